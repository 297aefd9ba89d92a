"""The labelling work chain with real CP2K (GFN1-xTB): clusters and cells, derivatives, handlers, options.

Its logic alone (queue, failures, collection, refusals) is tested against fake children in
``tests/workchains/test_label.py``.
"""

import numpy as np
import pytest
from aiida import engine, orm
from ase import Atoms
from ase.build import molecule

from aiida_mofal.workchains.label import LabelWorkChain
from tests.structure_files import read_structure

pytestmark = pytest.mark.engine


@pytest.fixture
def zn_im4_cluster() -> Atoms:
    """Zn(HIm)4 2+ cut by the project's own cluster extraction from the small Zn(Im)2 framework (37 atoms)."""
    from aiida_mofal.clusters.extract import extract_clusters

    framework = read_structure('ZnIm2-sod_Lewis2009.cif')
    zinc = int(np.flatnonzero(framework.numbers == 30)[0])
    (cluster,) = extract_clusters(framework, [zinc], mantle_depth=1, merge_depth=0)
    return cluster


@pytest.fixture
def water() -> Atoms:
    atoms = molecule('H2O')
    atoms.info.update(config_type='cluster', charge=0, multiplicity=1)
    return atoms


@pytest.fixture
def small_cell() -> Atoms:
    """Water and methane in a skewed 5 Å cell: a periodic structure that CP2K xTB labels in about a second."""
    atoms = Atoms(
        'OH2CH4',
        positions=[
            [0.0, 0.0, 0.0],
            [0.96, 0.0, 0.0],
            [-0.24, 0.93, 0.0],
            [2.5, 2.5, 2.5],
            [3.5, 2.5, 2.7],
            [2.5, 3.6, 2.5],
            [2.0, 2.0, 1.6],
            [2.0, 2.0, 3.4],
        ],
        cell=[[5.0, 0.0, 0.0], [0.3, 5.2, 0.0], [0.0, 0.2, 5.5]],
        pbc=True,
    )
    atoms.info.update(config_type='periodic', charge=0, multiplicity=1)
    return atoms


def run_label(code, frames, protocol='xtb', overrides=None, **kwargs):
    builder = LabelWorkChain.get_builder_from_protocol(code, frames, protocol=protocol, overrides=overrides, **kwargs)
    return engine.run_get_node(builder)


def test_charged_cluster_and_periodic_cell_in_one_workchain(mofal_codes, zn_im4_cluster, small_cell):
    assert zn_im4_cluster.info['charge'] == 2 and len(zn_im4_cluster) == 37
    results, node = run_label(mofal_codes['cp2k'], [zn_im4_cluster, small_cell])
    assert node.is_finished_ok, node.exit_message
    dataset = results['dataset']
    assert dataset.count == 2
    assert dataset.config_types == {'cluster': 1, 'periodic': 1}
    assert dataset.level_of_theory['method'] == 'GFN1-xTB'
    assert set(dataset.labels) == {'energy', 'forces', 'stress'}
    cluster, cell = dataset.get_atoms()
    assert cluster.info['charge'] == 2 and cluster.info['multiplicity'] == 1
    assert 'role' in cluster.arrays and 'parent_index' in cluster.arrays  # the extraction's arrays survive
    assert cluster.arrays['REF_forces'].shape == (37, 3) and 'REF_stress' not in cluster.info
    assert cell.info['REF_stress'].shape == (6,)
    # E0s for every element, each free atom in its ground spin state
    e0s = results['isolated_atom_energies'].get_dict()
    assert set(e0s) == {'C', 'H', 'N', 'O', 'Zn'} == set(dataset.isolated_atom_energies)
    atom_n = [c for c in node.called if c.base.links.get_incoming().first().link_label == 'atom_N']
    parameters = atom_n[0].inputs.cp2k.parameters.get_dict()
    assert parameters['FORCE_EVAL']['DFT']['MULTIPLICITY'] == 4 and parameters['FORCE_EVAL']['DFT']['UKS'] is True
    # binding: the cluster is bound relative to its free atoms
    binding = cluster.info['REF_energy'] - sum(e0s[s] for s in cluster.get_chemical_symbols())
    assert binding < -100.0


def test_forces_are_the_negative_energy_gradient_and_options_reach_every_job(mofal_codes, water):
    h = 0.002
    frames = [water.copy()]
    for atom in (0, 1):
        for sign in (1, -1):
            displaced = water.copy()
            displaced.positions[atom, 0] += sign * h
            frames.append(displaced)
    options = {'custom_scheduler_commands': '# mofal-options: account proj', 'append_text': 'echo mofal-options'}
    results, node = run_label(mofal_codes['cp2k'], frames, overrides={'isolated_atoms': False}, options=options)
    assert node.is_finished_ok, node.exit_message
    calcs = [calc for base in node.called if base.process_label == 'Cp2kBaseWorkChain' for calc in base.called]
    assert len(calcs) == 5
    for calc in calcs:  # scheduler options reach every CP2K job, through its submission script
        script = calc.base.repository.get_object_content('_aiidasubmit.sh')
        assert '# mofal-options: account proj' in script and 'echo mofal-options' in script
    labelled = results['dataset'].get_atoms()
    forces = labelled[0].arrays['REF_forces']
    for k, atom in enumerate((0, 1)):
        plus, minus = labelled[1 + 2 * k].info['REF_energy'], labelled[2 + 2 * k].info['REF_energy']
        assert (plus - minus) / (2 * h) == pytest.approx(-forces[atom, 0], abs=1e-3)
    assert np.abs(forces).max() > 0.05  # a real, non-trivial force was compared


def test_stress_unit_and_sign_match_a_strain_derivative(mofal_codes, small_cell):
    h = 1e-3
    frames = [small_cell.copy()]
    components = [(0, 0), (1, 1), (0, 1)]
    for i, j in components:
        for sign in (1, -1):
            strain = np.eye(3)
            strain[i, j] += sign * h
            if i != j:
                strain[j, i] += sign * h
            strained = small_cell.copy()
            strained.set_cell(small_cell.cell @ strain.T, scale_atoms=True)
            frames.append(strained)
    results, node = run_label(mofal_codes['cp2k'], frames, overrides={'isolated_atoms': False})
    assert node.is_finished_ok, node.exit_message
    labelled = results['dataset'].get_atoms()
    voigt = labelled[0].info['REF_stress']  # xx yy zz yz xz xy, eV/Å^3
    matrix = {(0, 0): voigt[0], (1, 1): voigt[1], (0, 1): voigt[5]}
    volume = small_cell.get_volume()
    for k, (i, j) in enumerate(components):
        derivative = (labelled[1 + 2 * k].info['REF_energy'] - labelled[2 + 2 * k].info['REF_energy']) / (2 * h)
        expected = derivative / volume / (2 if i != j else 1)
        assert matrix[(i, j)] == pytest.approx(expected, abs=2e-5), (i, j)
    assert max(abs(v) for v in matrix.values()) > 1e-3  # GPa-sized stresses, not zeros


def test_scf_failure_is_recovered_by_the_handler(mofal_codes, water):
    overrides = {'isolated_atoms': False, 'cp2k': {'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 1}}}}}
    results, node = run_label(mofal_codes['cp2k'], [water], overrides=overrides)
    assert node.is_finished_ok, node.exit_message
    (base,) = [c for c in node.called if c.process_label == 'Cp2kBaseWorkChain']
    calcs = sorted(base.called, key=lambda c: c.ctime)
    assert [c.exit_status for c in calcs] == [450, 0]  # SCF not converged, then fixed
    second = calcs[1].inputs.parameters.get_dict()['FORCE_EVAL']['DFT']
    assert second['SCF']['MAX_SCF'] == 100 and second['SCF']['SCF_GUESS'] == 'RESTART'
    output = calcs[1].outputs.retrieved.base.repository.get_object_content('aiida.out')
    assert 'Density guess:                                   RESTART' in output  # CP2K read the wavefunction
    assert results['dataset'].count == 1


def test_unrecoverable_failure_is_left_out_and_reported(mofal_codes, water, small_cell):
    overrides = {
        'isolated_atoms': False,
        'calculation': {'max_iterations': 1},
        'cp2k': {'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 1}}}},
    }
    strained = water.copy()
    strained.positions[1] *= 1.6
    results, node = run_label(mofal_codes['cp2k'], [water, strained], overrides=overrides)
    assert node.exit_status == LabelWorkChain.exit_codes.ERROR_ALL_FAILED.status
    failed = results['failed'].get_dict()
    assert set(failed) == {'frame_0', 'frame_1'}
    assert all(entry['exit_status'] == 401 for entry in failed.values())  # max iterations of the base chain
    assert 'dataset' not in results


def test_a_crashing_executable_is_retried_once_then_reported(mofal_codes, water, tmp_path):
    crash = orm.InstalledCode(
        label='cp2k-crash',
        computer=mofal_codes['cp2k'].computer,
        filepath_executable='/bin/false',
        default_calc_job_plugin='cp2k',
    ).store()
    results, node = run_label(crash, [water], overrides={'isolated_atoms': False})
    assert node.exit_status == LabelWorkChain.exit_codes.ERROR_ALL_FAILED.status
    (base,) = [c for c in node.called if c.process_label == 'Cp2kBaseWorkChain']
    assert len(base.called) == 2  # one retry
    assert base.exit_status == 311 and 'crashed twice' in base.exit_message
    assert results['failed']['frame_0']['exit_status'] == 311


def test_walltime_is_handled_by_restarting_from_the_wavefunction(mofal_codes, water):
    """PBE on water with CP2K's own WALLTIME (1 s) below its setup time: CP2K stops cleanly (exit 400) and the
    handler relaunches from the wavefunction in the stopped run's folder. Two iterations only: whether the
    SCF completes depends on the machine's speed, the restart mechanics do not."""
    overrides = {
        'isolated_atoms': False,
        'cutoff': 250,
        'cluster': {'vacuum': 3.0},
        'calculation': {'max_iterations': 2},
        'cp2k': {'GLOBAL': {'WALLTIME': 1}},
    }
    results, node = run_label(mofal_codes['cp2k'], [water], protocol='fast', overrides=overrides)
    (base,) = [c for c in node.called if c.process_label == 'Cp2kBaseWorkChain']
    calcs = sorted(base.called, key=lambda c: c.ctime)
    assert [c.exit_status for c in calcs] == [400, 400]
    assert 'exceeded requested execution time' in calcs[0].outputs.retrieved.base.repository.get_object_content(
        'aiida.out'
    )
    restarted = calcs[1]
    assert restarted.inputs.parameters['FORCE_EVAL']['DFT']['SCF']['SCF_GUESS'] == 'RESTART'
    assert restarted.inputs.parameters['FORCE_EVAL']['DFT']['WFN_RESTART_FILE_NAME'] == 'parent_calc/aiida-RESTART.wfn'
    assert restarted.inputs.parent_calc_folder.pk == calcs[0].outputs.remote_folder.pk
    assert node.exit_status == LabelWorkChain.exit_codes.ERROR_ALL_FAILED.status
    assert results['failed']['frame_0']['exit_status'] == 401  # iterations exhausted, reported, not hidden
