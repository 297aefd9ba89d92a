"""The shipped MOF structures (tests/data_files/structures), read once per session."""

import functools
import warnings
from pathlib import Path

import ase.io

DATA = Path(__file__).resolve().parent / 'data_files' / 'structures'
CIFS = sorted(p.name for p in DATA.glob('*.cif'))


@functools.cache
def _read(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # ASE warns about CIF occupancy/symmetry details
        return ase.io.read(DATA / name)


def read_structure(name: str):
    """A fresh copy of a test structure (parsing CIFs is slow: each file is read once)."""
    return _read(name).copy()
