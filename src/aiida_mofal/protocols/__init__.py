"""YAML presets (fast / moderate / precise and friends) for every engine."""
