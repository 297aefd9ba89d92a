"""The CP2K GFN1-xTB data set (tests/data_files/xtb) as stored data sets, split once per session."""

import json
from pathlib import Path

import pytest

XTB = Path(__file__).resolve().parent.parent / 'data_files' / 'xtb'
NAME = 'organics_gfn1xtb'


def xtb_meta() -> dict:
    return json.loads((XTB / f'{NAME}.json').read_text())


@pytest.fixture(scope='session')
def xtb_dataset(aiida_profile):
    """All 72 labelled frames with their E0s, stored."""
    from aiida_mofal.data import DatasetData

    meta = xtb_meta()
    return DatasetData.from_file(
        XTB / f'{NAME}.extxyz',
        level_of_theory=meta['level_of_theory'],
        isolated_atom_energies=meta['isolated_atom_energies'],
    ).store()


@pytest.fixture(scope='session')
def xtb_split(xtb_dataset):
    """(train, validation) from the seeded split calcfunction: 58 / 14 frames."""
    from aiida import orm

    from aiida_mofal.calculations.mace_train import split_dataset

    result = split_dataset(xtb_dataset, orm.Float(0.2), orm.Int(7))
    return result['train'], result['validation']


@pytest.fixture(scope='session')
def python_code(mofal_codes):
    return mofal_codes['python-mace']
