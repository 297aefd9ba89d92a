"""The MD driver for real with the tiny Cu MACE model: ensembles, ramps, stages, agreement of engines, failures.

All walks of an engine run in one job (one process, one model load), as production jobs do; each test reads its walk.
The jobs run from copies of the shipped files with aiida_mofal unimportable (``md_driver``).
"""

import mace  # noqa: F401  (first: it lets e3nn load its constants)
import numpy as np
import pytest
from ase.build import bulk

from aiida_mofal.md.protocol import remaining_settings, validate_md_settings
from tests.mlp.mace_models import assert_same_predictions

from .md_driver import MODEL, mace_job, run_job, walk_files

pytestmark = pytest.mark.engine
ENGINES = ['ase', 'lammps-python']
SKEW = np.array([[1.0, 0.05, 0.0], [0.0, 1.0, 0.03], [0.0, 0.0, 1.0]])


def copper(skew=None, seed=3):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    if skew is not None:
        atoms.set_cell(atoms.cell.array @ skew, scale_atoms=True)
    atoms.rattle(0.02, seed=seed)
    return atoms


def nvt(steps, temperature, thermostat='nose-hoover', **extra):
    return {'ensemble': 'nvt', 'thermostat': thermostat, 'timestep': 2.0, 'temperature_damping': 20.0,
            'schedule': [{'steps': steps, 'temperature': temperature}], 'dump_every': 10, 'thermo_every': 5,
            **extra}  # fmt: skip


COMBINATIONS = [
    ('nve', 'nose-hoover', 'isotropic'),
    ('nvt', 'nose-hoover', 'isotropic'),
    ('nvt', 'langevin', 'isotropic'),
    ('npt', 'nose-hoover', 'isotropic'),
    ('npt', 'nose-hoover', 'anisotropic'),
    ('npt', 'nose-hoover', 'triclinic'),
    ('npt', 'langevin', 'isotropic'),
    ('npt', 'langevin', 'triclinic'),
]


def combination(ensemble, thermostat, barostat):
    stage = {'steps': 12, 'temperature': 300.0} if ensemble != 'nve' else {'steps': 12}
    if ensemble == 'npt':
        stage['pressure'] = 10.0  # far from the cell's own pressure: the cell must move
    return {'ensemble': ensemble, 'thermostat': thermostat, 'barostat': barostat, 'timestep': 2.0,
            'temperature_damping': 20.0, 'pressure_damping': 100.0, 'initial_temperature': 300.0,
            'schedule': [stage], 'dump_every': 4, 'thermo_every': 4}  # fmt: skip


def physics_walks(engine):
    """Every walk of the physics job of ``engine``: name -> (atoms, settings)."""
    walks = {
        'nvt_target': (copper(), nvt(150, 600.0, initial_temperature=100.0, seed=1)),
        'nve': (copper(), {'ensemble': 'nve', 'timestep': 1.0, 'initial_temperature': 300.0,
                           'schedule': [{'steps': 120}], 'dump_every': 20, 'thermo_every': 5}),
        'npt': (copper(), {'ensemble': 'npt', 'timestep': 2.0, 'temperature_damping': 40.0, 'pressure_damping': 200.0,
                           'schedule': [{'steps': 150, 'temperature': 300.0, 'pressure': 8.0}],
                           'dump_every': 10, 'thermo_every': 5}),
        'agree': (copper(SKEW), nvt(200, 500.0, seed=4)),
        # thermostatted from 100 K towards 600 K over two stages: the extended-system energy must go on
        'stages': (copper(), {**nvt(60, 600.0, initial_temperature=100.0, timestep=1.0, temperature_damping=100.0),
                              'schedule': [{'steps': 60, 'temperature': 600.0}, {'steps': 40, 'temperature': 600.0}]}),
        'blowup': (copper(), nvt(20, 300.0, timestep=40.0, temperature_damping=100.0, dump_every=2, thermo_every=2)),
        **{'-'.join(key): (copper(np.array([[1.0, 0.04, 0.0], [0.0, 1.0, 0.02], [0.0, 0.0, 1.0]])), combination(*key))
           for key in COMBINATIONS},
    }  # fmt: skip
    if engine == 'ase':
        walks['langevin_ramp'] = (copper(), nvt(200, [200.0, 1000.0], thermostat='langevin', seed=2))
    return walks


@pytest.fixture(scope='module')
def torchscript(tmp_path_factory):
    from aiida_mofal.md.torchscript import compile_model

    return compile_model(MODEL, tmp_path_factory.mktemp('model') / 'model.pt')


@pytest.fixture(scope='module')
def walltime_run(tmp_path_factory, torchscript):
    """A job far too long for its 10 s walltime: walk 0 stops itself, walk 1 never starts (ase, TorchScript)."""
    settings = validate_md_settings(nvt(100000, [300.0, 500.0], dump_every=10, thermo_every=5))
    directory = mace_job(tmp_path_factory.mktemp('walltime'), 'ase', [(copper(), settings), (copper(), nvt(10, 300.0))],
                         torchscript=torchscript, walltime_seconds=10)  # fmt: skip
    return directory, settings, run_job(directory)


@pytest.fixture(scope='module')
def runs(tmp_path_factory, torchscript, walltime_run):
    """Run the physics job of each engine (lammps-python also continues the walltime walk); name -> outputs."""
    directory, settings, result = walltime_run
    rest = remaining_settings(settings, result['walks'][0]['completed_steps'])
    rest['schedule'][0]['steps'] = 20  # only the start of the rest, to keep the test short
    outputs = {}
    for engine in ENGINES:
        walks = list(physics_walks(engine).items())
        if engine == 'lammps-python':
            walks.append(('continued', (copper(), rest, directory / 'walk_0' / 'restart.npz')))
        job = mace_job(tmp_path_factory.mktemp(engine), engine, [walk for _, walk in walks], torchscript=torchscript)
        result = run_job(job)
        outputs[engine] = {name: {'result': result['walks'][k], **walk_files(job, k)} for k, (name, _) in
                           enumerate(walks)}  # fmt: skip
    return outputs


def periodic_distance(a, b, cell):
    fractional = (a - b) @ np.linalg.inv(cell)
    return np.abs((fractional - np.round(fractional)) @ cell).max()


@pytest.mark.parametrize('engine', ENGINES)
def test_nvt_reaches_and_holds_target(runs, engine):
    """From 100 K, a Nosé–Hoover NVT run at 600 K gets there and stays (mean of the second half within 10 %)."""
    out = runs[engine]['nvt_target']
    assert out['result']['status'] == 'finished'
    temperature = out['thermo']['temperature']
    assert temperature[0] == pytest.approx(100.0, rel=1e-6)
    assert abs(temperature[len(temperature) // 2 :].mean() - 600.0) < 60.0, temperature
    assert out['trajectory']['positions'].shape == (16, 32, 3)


def test_langevin_ramp_reaches_end_temperature(runs):
    thermo = runs['ase']['langevin_ramp']['thermo']
    assert thermo['target_temperature'][0] == pytest.approx(200.0)
    assert thermo['target_temperature'][-1] == pytest.approx(1000.0)
    last, first = thermo['temperature'][-8:], thermo['temperature'][1:9]
    assert abs(last.mean() - 1000.0) < 200.0 and last.mean() > first.mean() + 400.0


@pytest.mark.parametrize('engine', ENGINES)
def test_nve_conserves_energy(runs, engine):
    """NVE, 1 fs, 300 K: total energy stays within 0.5 meV/atom of its start over 120 steps."""
    thermo = runs[engine]['nve']['thermo']
    total = thermo['potential_energy'] + thermo['kinetic_energy']
    assert np.ptp(thermo['kinetic_energy']) > 0.05  # it moved: energy went between kinetic and potential
    assert np.abs(total - total[0]).max() / 32 < 5e-4


@pytest.mark.parametrize('engine', ENGINES)
def test_npt_changes_the_volume(runs, engine):
    """At +8 GPa (above the cell's starting pressure) the isotropic MTK barostat shrinks the cell."""
    out = runs[engine]['npt']
    volume, pressure, cells = out['thermo']['volume'], out['thermo']['pressure'], out['trajectory']['cells']
    assert pressure[0] < 8.0 and volume[-10:].mean() < 0.985 * volume[0], volume
    assert np.allclose(cells[-1] / cells[-1][0, 0], cells[0] / cells[0][0, 0], atol=1e-6)  # isotropic: shape kept


@pytest.mark.parametrize('engine', ENGINES)
def test_thermostat_chains_continue_across_stages(runs, engine):
    """The conserved (extended-system) energy has no jump at the stage boundary although the thermostat did work."""
    thermo = runs[engine]['stages']['thermo']
    steps, conserved = thermo['step'], thermo['conserved_energy']
    physical = thermo['potential_energy'] + thermo['kinetic_energy']
    boundary = int(np.flatnonzero(steps == 60)[0])
    work = abs(conserved[boundary] - physical[boundary])  # what the thermostat put in: what a fresh one would drop
    assert work > 0.02  # eV (about 0.08 here)
    assert abs(conserved[boundary + 1] - conserved[boundary]) < 0.01 * work  # (about 1e-5 eV here)


def test_engines_agree_on_forces_energy_and_thermodynamics(runs):
    """Same state, same model: the same first frame; then statistically the same NVT thermodynamics."""
    ase, lmp = runs['ase']['agree'], runs['lammps-python']['agree']
    first = [{key: value[0] for key, value in out['trajectory'].items() if key not in ('numbers', 'pbc', 'masses')}
             for out in (ase, lmp)]  # fmt: skip
    assert first[1]['energies'] == pytest.approx(first[0]['energies'], abs=1e-8)
    for key, tolerance in (('forces', 1e-8), ('stresses', 1e-9), ('cells', 1e-9)):
        np.testing.assert_allclose(first[1][key], first[0][key], atol=tolerance)
    assert periodic_distance(first[1]['positions'], first[0]['positions'], first[0]['cells']) < 1e-9
    # the same integrator from the same velocities (LAMMPS wraps atoms into its box): still together after 10 steps
    later = [out['trajectory']['positions'][1] for out in (lmp, ase)]
    assert periodic_distance(*later, ase['trajectory']['cells'][1]) < 1e-4

    def mean_and_error(values, blocks=5):
        means = np.array([block.mean() for block in np.array_split(values, blocks)])
        return means.mean(), means.std(ddof=1) / np.sqrt(blocks)

    for key in ('temperature', 'potential_energy', 'pressure'):
        mean_a, error_a = mean_and_error(ase['thermo'][key][20:])
        mean_l, error_l = mean_and_error(lmp['thermo'][key][20:])
        assert abs(mean_a - mean_l) < 4 * np.hypot(error_a, error_l) + 1e-6 * abs(mean_a), (key, mean_a, mean_l)


@pytest.mark.parametrize('engine', ENGINES)
def test_every_ensemble_runs(runs, engine):
    """Each ensemble/thermostat/barostat of the protocol runs a few steps; the cell moves only where it may."""
    for ensemble, thermostat, barostat in COMBINATIONS:
        out = runs[engine]['-'.join((ensemble, thermostat, barostat))]
        assert out['result']['status'] == 'finished', (ensemble, thermostat, barostat, out['result']['message'])
        cells = out['trajectory']['cells']
        assert len(cells) == 4 and np.all(np.isfinite(out['thermo']['temperature']))
        moved = np.abs(cells[-1] - cells[0]).max()
        assert (moved > 1e-4) if ensemble == 'npt' else (moved < 1e-9), (ensemble, thermostat, barostat, moved)
        if ensemble == 'npt' and barostat == 'isotropic':  # one scale factor for the whole cell
            lengths = np.linalg.norm(cells, axis=2)
            assert np.allclose(cells[-1] / lengths[-1, 0], cells[0] / lengths[0, 0], atol=1e-8)


@pytest.mark.parametrize('engine', ENGINES)
def test_a_blowup_is_stopped_with_the_last_good_state(runs, engine):
    """40 fs blows copper up within a few steps: status blowup (or lost atoms), the last good frame is the restart."""
    out = runs[engine]['blowup']
    assert out['result']['status'] in ('blowup', 'lost_atoms'), out['result']
    assert out['result']['completed_steps'] < 20 and out['restart']['step'] == out['result']['completed_steps']
    assert np.all(np.isfinite(out['trajectory']['positions']))


def test_walltime_stop_and_continue_from_restart(walltime_run, runs):
    """The job stops itself before its walltime; the next job continues the walk from its restart state."""
    directory, settings, result = walltime_run
    stopped, waiting = result['walks']
    assert stopped['status'] == 'walltime' and 0 < stopped['completed_steps'] < 100000
    assert waiting['status'] == 'walltime' and waiting['completed_steps'] == 0  # never started
    first = walk_files(directory, 0)
    assert first['restart']['step'] == stopped['completed_steps'] >= first['trajectory']['steps'][-1]
    assert 'trajectory' not in walk_files(directory, 1)
    second = runs['lammps-python']['continued']
    assert second['result']['status'] == 'finished'
    fractional = (second['trajectory']['positions'][0] - first['restart']['positions']) @ np.linalg.inv(
        first['restart']['cell']
    )
    assert np.abs(fractional - np.round(fractional)).max() < 1e-9  # same atoms (LAMMPS wraps them)
    assert np.allclose(second['trajectory']['velocities'][0], first['restart']['velocities'])
    expected = 300.0 + 200.0 * stopped['completed_steps'] / 100000
    assert second['thermo']['target_temperature'][0] == pytest.approx(expected)


def test_nan_from_the_model_is_reported_as_such(tmp_path, torchscript):
    import torch

    model = torch.load(MODEL, map_location='cpu', weights_only=False)
    with torch.no_grad():
        next(model.readouts.parameters()).fill_(float('nan'))
    torch.save(model, tmp_path / 'nan.model')
    job = mace_job(tmp_path / 'run', 'ase', [(copper(), nvt(10, 300.0))], model=tmp_path / 'nan.model')
    walk = run_job(job)['walks'][0]
    assert walk['status'] == 'nan' and 'model returned a non-finite' in walk['message']


def test_torchscript_gives_what_mace_calculator_gives(torchscript):
    from mace.calculators.mace import MACECalculator

    from aiida_mofal.md.torchscript import TorchScriptCalculator

    atoms = copper(SKEW, seed=8)
    reference = MACECalculator(model_paths=str(MODEL), device='cpu', default_dtype='float64')
    assert_same_predictions(atoms, reference, TorchScriptCalculator(torchscript), (1e-10, 1e-10, 1e-12), 0.05)
