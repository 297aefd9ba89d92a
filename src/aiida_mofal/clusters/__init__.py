"""Cluster extraction: core, mantle and H-capped termination cut out of periodic cells; force matching."""
