"""Reading structure files for labelling: periodic or cluster, charge and multiplicity, clear refusals."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import write

from aiida_mofal.structures.io import read_frames, read_structure
from tests.structure_files import DATA


def test_frames_keep_their_header_unless_overridden(tmp_path):
    ion = molecule('H2O')
    ion.info.update(config_type='cluster', charge=1, multiplicity=2)
    ion.arrays['role'] = np.array(['core', 'cap', 'cap'], dtype=object)
    write(tmp_path / 'ion.xyz', [ion, molecule('NH3')], format='extxyz')
    first, second = read_frames([tmp_path / 'ion.xyz'], cluster=True)
    assert first.info['charge'] == 1 and first.info['multiplicity'] == 2 and not first.pbc.any()
    assert first.info['config_type'] == second.info['config_type'] == 'cluster'
    assert first.arrays['role'].tolist() == ['core', 'cap', 'cap']  # object arrays become strings
    assert first.info['source_file'] == 'ion.xyz' and 'charge' not in second.info
    (overridden, _) = read_frames([tmp_path / 'ion.xyz'], cluster=True, charge=0, multiplicity=1)
    assert overridden.info['charge'] == 0 and overridden.info['multiplicity'] == 1


def test_a_cif_becomes_a_periodic_frame_with_scalar_metadata_only():
    atoms = read_structure(DATA / 'ZnIm2-sod_Lewis2009.cif')
    assert atoms.pbc.all() and atoms.info['config_type'] == 'periodic'
    assert atoms.info['charge'] == 0 and atoms.info['multiplicity'] == 1
    assert all(isinstance(value, (str, int, float)) for value in atoms.info.values())


def test_bad_files_are_refused_with_the_fix(tmp_path):
    write(tmp_path / 'water.xyz', molecule('H2O'))
    with pytest.raises(ValueError, match=r'water.xyz frame 0: not periodic .* pass --cluster'):
        read_frames([tmp_path / 'water.xyz'])
    (tmp_path / 'junk.cif').write_text('this is no structure\n')
    with pytest.raises(ValueError, match='junk.cif: ASE cannot read it'):
        read_frames([tmp_path / 'junk.cif'])
    cell = Atoms('H2', positions=[[0, 0, 0], [0, 0, 0.74]], cell=[5, 5, 5], pbc=True)
    write(tmp_path / 'two.xyz', [cell, cell], format='extxyz')
    with pytest.raises(ValueError, match='holds 2 frames; give one'):
        read_structure(tmp_path / 'two.xyz')
