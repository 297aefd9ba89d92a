"""Physics of the MD engines (md_run.py run as the remote runs it): ensembles, ramps, agreement of engines."""

import numpy as np
import pytest

from .helpers import run_script

pytestmark = pytest.mark.engine

ENGINES = ['ase', 'lammps-python']


def periodic_distance(a, b, cell):
    fractional = (a - b) @ np.linalg.inv(cell)
    return np.abs((fractional - np.round(fractional)) @ cell).max()


def nvt(steps, temperature, thermostat='nose-hoover', **extra):
    return {
        'ensemble': 'nvt',
        'thermostat': thermostat,
        'timestep': 2.0,
        'temperature_damping': 20.0,
        'schedule': [{'steps': steps, 'temperature': temperature}],
        'dump_every': 10,
        'thermo_every': 5,
        **extra,
    }


@pytest.mark.parametrize('engine', ENGINES)
def test_nvt_reaches_and_holds_target(tmp_path, cu_cell, cu_model_file, engine):
    """From 100 K, a Nosé–Hoover NVT run at 600 K gets there and stays (mean of the second half within 10 %)."""
    out = run_script(tmp_path, cu_cell, nvt(200, 600.0, initial_temperature=100.0, seed=1), engine)
    assert out['result']['status'] == 'finished'
    temperature = out['thermo']['temperature']
    assert temperature[0] == pytest.approx(100.0, rel=1e-6)
    second_half = temperature[len(temperature) // 2 :]
    assert abs(second_half.mean() - 600.0) < 60.0, second_half
    assert out['trajectory']['positions'].shape == (21, 32, 3)


def test_langevin_ramp_reaches_end_temperature(tmp_path, cu_cell, cu_model_file):
    """A Langevin ramp 200 -> 1000 K ends near 1000 K, following the targets."""
    settings = nvt(200, [200.0, 1000.0], thermostat='langevin', seed=2)
    out = run_script(tmp_path, cu_cell, settings, 'ase')
    thermo = out['thermo']
    assert thermo['target_temperature'][0] == pytest.approx(200.0)
    assert thermo['target_temperature'][-1] == pytest.approx(1000.0)
    last = thermo['temperature'][-8:]
    assert abs(last.mean() - 1000.0) < 200.0, last
    first = thermo['temperature'][1:9]
    assert last.mean() > first.mean() + 400.0


@pytest.mark.parametrize('engine', ENGINES)
def test_nve_conserves_energy(tmp_path, cu_cell, cu_model_file, engine):
    """NVE, 1 fs, 300 K: total energy stays within 0.5 meV/atom of its start over 200 steps."""
    settings = {
        'ensemble': 'nve',
        'timestep': 1.0,
        'initial_temperature': 300.0,
        'schedule': [{'steps': 200}],
        'dump_every': 20,
        'thermo_every': 5,
    }
    out = run_script(tmp_path, cu_cell, settings, engine)
    thermo = out['thermo']
    total = thermo['potential_energy'] + thermo['kinetic_energy']
    assert np.ptp(thermo['kinetic_energy']) > 0.05  # it moved: energy went between kinetic and potential
    assert np.abs(total - total[0]).max() / 32 < 5e-4


@pytest.mark.parametrize('engine', ENGINES)
def test_npt_changes_the_volume(tmp_path, cu_cell, cu_model_file, engine):
    """At +8 GPa (above the cell's starting pressure) the isotropic MTK barostat shrinks the cell."""
    settings = {
        'ensemble': 'npt',
        'timestep': 2.0,
        'temperature_damping': 40.0,
        'pressure_damping': 200.0,
        'schedule': [{'steps': 150, 'temperature': 300.0, 'pressure': 8.0}],
        'dump_every': 10,
        'thermo_every': 5,
    }
    out = run_script(tmp_path, cu_cell, settings, engine)
    volume, pressure = out['thermo']['volume'], out['thermo']['pressure']
    assert pressure[0] < 8.0
    assert volume[-10:].mean() < 0.985 * volume[0], volume
    cells = out['trajectory']['cells']
    assert np.allclose(cells[-1] / cells[-1][0, 0], cells[0] / cells[0][0, 0], atol=1e-6)  # isotropic: shape kept


def test_engines_agree_on_forces_energy_and_thermodynamics(tmp_path, cu_cell, cu_model_file):
    """Same state, same model: the same first frame; then statistically the same NVT thermodynamics."""
    cell = cu_cell.copy()
    cell.set_cell(cell.cell.array @ np.array([[1.0, 0.05, 0.0], [0.0, 1.0, 0.03], [0.0, 0.0, 1.0]]), scale_atoms=True)
    settings = nvt(300, 500.0, seed=4)
    ase = run_script(tmp_path / 'ase', cell, settings, 'ase')
    lmp = run_script(tmp_path / 'lammps', cell, settings, 'lammps-python')
    first_ase = {key: value[0] for key, value in ase['trajectory'].items() if key not in ('numbers', 'pbc', 'masses')}
    first_lmp = {key: value[0] for key, value in lmp['trajectory'].items() if key not in ('numbers', 'pbc', 'masses')}
    assert first_lmp['energies'] == pytest.approx(first_ase['energies'], abs=1e-8)
    np.testing.assert_allclose(first_lmp['forces'], first_ase['forces'], atol=1e-8)
    np.testing.assert_allclose(first_lmp['stresses'], first_ase['stresses'], atol=1e-9)
    np.testing.assert_allclose(first_lmp['cells'], first_ase['cells'], atol=1e-9)
    assert periodic_distance(first_lmp['positions'], first_ase['positions'], first_ase['cells']) < 1e-9
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


@pytest.mark.parametrize('engine', ENGINES)
def test_every_ensemble_runs(tmp_path, cu_cell, cu_model_file, engine):
    """Each ensemble/thermostat/barostat of the protocol runs a few steps; the cell moves only where it may."""
    from .helpers import load_outputs, prepare, run_many

    cell = cu_cell.copy()
    cell.set_cell(cell.cell.array @ np.array([[1.0, 0.04, 0.0], [0.0, 1.0, 0.02], [0.0, 0.0, 1.0]]), scale_atoms=True)
    directories = []
    for ensemble, thermostat, barostat in COMBINATIONS:
        stage = {'steps': 12, 'temperature': 300.0} if ensemble != 'nve' else {'steps': 12}
        if ensemble == 'npt':
            stage['pressure'] = 10.0  # far from the cell's own pressure: the cell must move
        settings = {'ensemble': ensemble, 'thermostat': thermostat, 'barostat': barostat, 'timestep': 2.0,
                    'temperature_damping': 20.0, 'pressure_damping': 100.0, 'initial_temperature': 300.0,
                    'schedule': [stage], 'dump_every': 4, 'thermo_every': 4}  # fmt: skip
        directories.append(prepare(tmp_path / f'{ensemble}-{thermostat}-{barostat}', cell, settings, engine))
    run_many(directories)
    for (ensemble, _, barostat), directory in zip(COMBINATIONS, directories):
        out = load_outputs(directory)
        assert out['result']['status'] == 'finished', (directory.name, out['result']['message'])
        cells = out['trajectory']['cells']
        assert len(cells) == 4 and np.all(np.isfinite(out['thermo']['temperature']))
        moved = np.abs(cells[-1] - cells[0]).max()
        if ensemble != 'npt':
            assert moved < 1e-9, directory.name
            continue
        assert moved > 1e-4, directory.name
        lengths = np.linalg.norm(cells, axis=2)
        if barostat == 'isotropic':  # one scale factor for the whole cell
            assert np.allclose(cells[-1] / lengths[-1, 0], cells[0] / lengths[0, 0], atol=1e-8), directory.name
