"""Parsers of the project's calculations, one module per calculation."""
