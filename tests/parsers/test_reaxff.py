"""The ``mofal.md`` parser on stored real ReaxFF runs (Zn(Im)2, 102 atoms; make_fixtures.py): charges, modes, errors."""

import numpy as np
import pytest

from .test_md import parse, parse_checked, walk_outputs

CASES = ['reaxff/finished', 'reaxff/lost_atoms', 'reaxff/qeq_not_converged']


@pytest.mark.parametrize('case', CASES)
def test_exit_code_and_walk_statuses(aiida_localhost, case):
    outputs, inputs, expected = parse_checked(aiida_localhost, case)
    statuses = [walk['status'] for walk in outputs['result']['walks']]
    assert statuses == [walk['status'] for walk in expected['walks']]
    for walk, wanted in zip(inputs['walks'], expected['walks']):
        nodes = walk_outputs(outputs, walk)
        assert ('charges' in nodes) == wanted['has_charges'] == (wanted['num_frames'] > 0)


def test_md_and_minimisation_walks(aiida_localhost):
    outputs, _ = parse(aiida_localhost, 'reaxff/finished')
    md, relaxed = outputs['walks']['walk_0'], outputs['walks']['walk_1']
    trajectory = md['trajectory']
    assert trajectory.engine == 'lammps-reaxff' and trajectory.get_array('steps').tolist() == [0, 10, 20]
    assert trajectory.get_thermo()['step'].tolist() == [0, 5, 10, 15, 20]
    assert trajectory.get_thermo()['target_temperature'][-1] == pytest.approx(400.0)
    charges = md['charges'].get_array('charges')
    symbols = np.array(trajectory.symbols)
    assert charges.shape == (3, 102) and np.abs(charges.sum(axis=1)).max() < 1e-3  # QEq keeps the cell neutral
    assert np.all(charges[:, symbols == 'Zn'] > 0.3) and np.all(charges[:, symbols == 'N'] < 0.0)
    assert md['charges'].get_array('steps').tolist() == [0, 10, 20]
    energies = trajectory.get_array('energies')
    assert np.all(-6.5 < energies / 102) and np.all(energies / 102 < -4.5)  # eV/atom, as for ZIF-4 with ReaxFF
    forces = trajectory.get_array('forces')
    assert np.abs(forces.sum(axis=1)).max() < 1e-4  # Newton's third law, QEq included, in the input's frame
    assert md['integrity']['summary']['intact'] and md['integrity']['n_reference_bonds'] == 8 * 12
    one = relaxed['trajectory']
    assert one.num_frames == 1 and one.base.attributes.get('ensemble') == 'minimize'
    assert one.get_array('energies')[0] < energies[0] + 1e-6  # frame 0 of the MD walk was minimised the same way


def test_lost_atoms_keeps_what_came_before(aiida_localhost):
    outputs, calcfunction = parse(aiida_localhost, 'reaxff/lost_atoms')
    assert 'lost atoms' in calcfunction.exit_message.lower()
    assert outputs['trajectory'].get_array('steps').tolist() == [0] and 'restart' in outputs
