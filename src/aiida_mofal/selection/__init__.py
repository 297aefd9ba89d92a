"""Selection of configurations: CBAD and flat-histogram samplers."""
