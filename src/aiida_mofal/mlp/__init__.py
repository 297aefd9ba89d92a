"""MACE helpers: training data format, inference, descriptors and error metrics."""
