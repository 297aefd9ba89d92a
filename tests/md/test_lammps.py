"""LAMMPS pieces (aiida_mofal.md.lammps): cell rotation, fixes per unit style, Voigt tensors, data file, readers."""

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read

from aiida_mofal.md import lammps
from aiida_mofal.md.protocol import validate_md_settings
from aiida_mofal.md.units import gpa_to_atm

CELL = np.array([[3.0, 0.4, 0.2], [0.3, 4.0, 0.1], [0.5, 0.2, 5.0]])


def test_lammps_cell_is_a_rotation_and_refuses_left_handed_cells():
    lower, rotation = lammps.lammps_cell(CELL)
    assert np.allclose(CELL @ rotation, lower) and np.allclose(rotation @ rotation.T, np.eye(3))
    assert lower[0, 1] == lower[0, 2] == lower[1, 2] == 0 and np.all(np.diag(lower) > 0)
    with pytest.raises(ValueError, match='left-handed'):
        lammps.lammps_cell(CELL[[1, 0, 2]])
    with pytest.raises(ValueError, match='flat'):
        lammps.lammps_cell(np.diag([1.0, 1.0, 0.0]))


def test_voigt_round_trip_and_rotation():
    rng = np.random.default_rng(0)
    voigt = rng.normal(size=(4, 6))
    matrix = lammps.voigt_to_matrix(voigt)
    assert matrix.shape == (4, 3, 3) and np.allclose(matrix, np.swapaxes(matrix, -1, -2))
    assert matrix[1, 1, 2] == voigt[1, 3] and matrix[1, 0, 2] == voigt[1, 4] and matrix[1, 0, 1] == voigt[1, 5]
    np.testing.assert_allclose(lammps.matrix_to_voigt(matrix), voigt)
    _, rotation = lammps.lammps_cell(CELL)
    rotated = lammps.rotate_voigt(voigt, rotation)
    np.testing.assert_allclose(lammps.rotate_voigt(rotated, rotation.T), voigt, atol=1e-12)  # and back
    assert np.allclose(np.trace(lammps.voigt_to_matrix(rotated), axis1=1, axis2=2), voigt[:, :3].sum(axis=1))


def test_fixes_per_ensemble_and_unit_style():
    settings = validate_md_settings(
        {'ensemble': 'npt', 'barostat': 'triclinic', 'timestep': 0.5,
         'schedule': [{'steps': 10, 'temperature': 300.0, 'pressure': [0.0, 1.0]}]}
    )  # fmt: skip
    stage = settings['schedule'][0]
    metal = lammps.fixes(settings, stage, seed=0)
    assert metal == ['fix integrate all npt temp 300.0 300.0 0.1 tri 0.0 10000.0 1.0',
                     'compute_modify integrate_temp extra/dof 0']  # fmt: skip
    real = lammps.fixes(settings, stage, seed=0, style='real')[0].split()
    assert real[:9] == ['fix', 'integrate', 'all', 'npt', 'temp', '300.0', '300.0', '100.0', 'tri']
    assert float(real[10]) == pytest.approx(gpa_to_atm(1.0)) and real[11] == '1000.0'
    langevin = lammps.fixes({**settings, 'thermostat': 'langevin', 'barostat': 'isotropic'}, stage, 4)
    assert langevin[0].startswith('fix integrate all nph iso') and 'langevin 300.0 300.0 0.1 5 zero yes' in langevin[2]
    assert lammps.fix_ids(langevin) == ['integrate', 'thermostat']
    nvt = validate_md_settings({'ensemble': 'nvt', 'timestep': 1.0, 'schedule': [{'steps': 5, 'temperature': 9.0}]})
    assert lammps.fixes({**nvt, 'barostat': 'anisotropic'}, nvt['schedule'][0], 0)[0] == (
        'fix integrate all nvt temp 9.0 9.0 0.1'
    )
    nve = validate_md_settings({'ensemble': 'nve', 'timestep': 1.0, 'initial_temperature': 5.0,
                                'schedule': [{'steps': 5}]})  # fmt: skip
    assert lammps.fixes(nve, nve['schedule'][0], 0) == ['fix integrate all nve']


def test_data_file_reads_back_in_ase(tmp_path):
    atoms = bulk('NaCl', 'rocksalt', a=5.6) * (2, 1, 1)
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.05], [0.0, 0.0, 1.0]]), scale_atoms=True)
    charges = np.where(atoms.numbers == 11, 0.5, -0.5)
    text = lammps.lammps_data(atoms, ['Na', 'Cl'], [22.99, 35.45], charges=charges)
    (tmp_path / 'data').write_text(text)
    back = read(tmp_path / 'data', format='lammps-data', atom_style='charge', Z_of_type={1: 11, 2: 17})
    _, rotation = lammps.lammps_cell(atoms.cell.array)
    assert np.allclose(back.cell.array, atoms.cell.array @ rotation)
    assert np.allclose(back.positions, atoms.positions @ rotation)
    assert np.allclose(back.get_initial_charges(), charges) and list(back.numbers) == list(atoms.numbers)
    with pytest.raises(ValueError, match='not in the element list'):
        lammps.lammps_data(atoms, ['Na'], [22.99])


def test_dump_reader_sorts_rotates_and_drops_a_cut_frame(tmp_path):
    lower, rotation = lammps.lammps_cell(CELL)
    # LAMMPS' bounding box of the triclinic cell: xlo_bound = xlo + min(0, xy, xz, xy + xz), ...
    xy, xz, yz = lower[1, 0], lower[2, 0], lower[2, 1]
    bounds = (f'{min(0, xy, xz, xy + xz)} {lower[0, 0] + max(0, xy, xz, xy + xz)} {xy}\n'
              f'{min(0, yz)} {lower[1, 1] + max(0, yz)} {xz}\n0 {lower[2, 2]} {yz}\n')  # fmt: skip
    frame = ('ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS xy xz yz pp pp pp\n' + bounds +
             'ITEM: ATOMS id type x y z vx vy vz q\n2 1 1 2 3 1000 0 0 0.1\n1 1 4 5 6 0 2000 0 -0.1\n')  # fmt: skip
    cut = 'ITEM: TIMESTEP\n20\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS xy xz yz pp pp pp\n' + bounds
    (tmp_path / 'dump').write_text(frame.format(step=0) + frame.format(step=10) + cut)
    arrays = lammps.read_dump(tmp_path / 'dump', cell=CELL, style='metal')
    assert arrays['steps'].tolist() == [0, 10]
    np.testing.assert_allclose(arrays['cells'][0], CELL, atol=1e-12)
    np.testing.assert_allclose(arrays['positions'][0], np.array([[4, 5, 6], [1, 2, 3]]) @ rotation.T)
    np.testing.assert_allclose(arrays['velocities'][0], np.array([[0, 2, 0], [1, 0, 0]]) @ rotation.T)  # Å/fs
    assert arrays['charges'][0].tolist() == [-0.1, 0.1] and 'forces' not in arrays


def test_table_reader(tmp_path):
    (tmp_path / 'table').write_text('# step a b\n0 1.5 2\n10 2.5 3\n')
    table = lammps.read_table(tmp_path / 'table', ('step', 'a', 'b'))
    assert table['step'].tolist() == [0, 10] and table['a'].tolist() == [1.5, 2.5]
    with pytest.raises(ValueError, match='has 3 columns, expected 2'):
        lammps.read_table(tmp_path / 'table', ('step', 'a'))
