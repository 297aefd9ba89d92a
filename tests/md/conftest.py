"""Fixtures of the MD tests: the tiny Cu MACE model (tests/data_files/md/make_model.py) and a Cu cell."""

from pathlib import Path

import pytest
from ase.build import bulk

from .helpers import MODEL


@pytest.fixture(scope='session')
def cu_model_file() -> Path:
    """A small float64 MACE model of EMT copper, made by make_model.py and committed."""
    assert MODEL.is_file(), 'run tests/data_files/md/make_model.py to make the test model'
    return MODEL


@pytest.fixture
def cu_cell():
    """32 Cu atoms, fcc, slightly rattled."""
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=3)
    return atoms
