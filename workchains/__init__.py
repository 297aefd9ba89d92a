"""Orchestration: work chains that compose aiida-mofal's calculations."""
