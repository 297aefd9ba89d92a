"""``mofal.md`` before it runs: input checks, and what prepare_for_submission writes (one walk, several, ReaxFF)."""

import json
from pathlib import Path

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import numpy as np
import pytest
from aiida import orm
from aiida.common.folders import SandboxFolder
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from ase.build import bulk

from aiida_mofal.calculations.md import SHIPPED_MODULES, MdCalculation, check_md_inputs
from aiida_mofal.calculations.reaxff import control_file, force_field
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.md.protocol import load_md_settings
from tests.conftest import ROOT
from tests.structure_files import read_structure

FORCEFIELDS = ROOT / 'tests' / 'data_files' / 'forcefields'
MODEL = ROOT / 'tests' / 'data_files' / 'md' / 'cu_emt_tiny.model'
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


@pytest.fixture(scope='module')
def cu_model(aiida_profile):
    return MaceModelData(MODEL, trusted=True).store()


@pytest.fixture
def cu_structure(aiida_profile):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=5)
    return orm.StructureData(ase=atoms)


def prepared(inputs):
    """Return the job's folder (as a dict of file names) and CalcInfo after prepare_for_submission."""
    process = instantiate_process(get_manager().get_runner(), MdCalculation, **inputs)
    folder = SandboxFolder()
    calcinfo = process.prepare_for_submission(folder)
    root = Path(folder.abspath)
    files = sorted(str(path.relative_to(root)) for path in root.rglob('*') if path.is_file())
    config = json.loads((root / 'md_input.json').read_text())
    return files, config, calcinfo, folder


def test_check_md_inputs_refuses_bad_inputs(cu_model, cu_structure, tiny_mace_model_file):
    settings = load_md_settings('nvt')
    with pytest.raises(ValueError, match='unknown MD engine'):
        check_md_inputs(cu_structure, cu_model, settings, 'gromacs')
    with pytest.raises(ValueError, match='contains Cu'):
        check_md_inputs(cu_structure, MaceModelData(tiny_mace_model_file, trusted=True), settings, 'ase')
    flat = cu_structure.clone()
    flat.pbc = (True, True, False)
    with pytest.raises(ValueError, match='periodic cells only'):
        check_md_inputs(flat, cu_model, settings, 'ase')
    with pytest.raises(ValueError, match='timestep'):
        check_md_inputs(cu_structure, cu_model, {**settings, 'timestep': -1.0}, 'ase')
    left = orm.StructureData(ase=cu_structure.get_ase()[[0, 1]])
    left.reset_cell((-np.array(cu_structure.cell)).tolist())
    with pytest.raises(ValueError, match='left-handed'):
        check_md_inputs(left, cu_model, settings, 'ase')


def test_validator_refuses_inconsistent_jobs(mofal_codes, cu_model, cu_structure):
    settings = orm.Dict(load_md_settings('nvt'))
    base = {'code': mofal_codes['python-mace'], 'metadata': {'options': OPTIONS}}
    spec = MdCalculation.spec().inputs
    cases = [
        ({'model': cu_model, 'engine': orm.Str('gromacs'), 'structure': cu_structure, 'settings': settings}, 'gromacs'),
        ({'structure': cu_structure, 'settings': settings}, 'needs input `model`'),
        ({'model': cu_model, 'structure': cu_structure, 'settings': settings,
          'walks': {'a': {'structure': cu_structure}}}, 'not both'),
        ({'model': cu_model, 'walks': {'a': {'structure': cu_structure, 'pressure': orm.Int(1)}}}, 'takes only'),
        ({'model': cu_model, 'structure': cu_structure}, 'only lammps-reaxff may minimise'),
        ({'engine': orm.Str('lammps-reaxff'), 'structure': cu_structure, 'settings': settings}, 'force_field'),
        ({'model': cu_model, 'engine': orm.Str('lammps-mliap'), 'structure': cu_structure, 'settings': settings},
         'mliap_model'),
    ]  # fmt: skip
    for inputs, message in cases:
        value = {'engine': orm.Str('ase'), 'device': orm.Str('cpu'), **base, **inputs}
        assert message in (MdCalculation.validate_inputs(value, spec) or ''), (inputs, message)


def test_one_walk_ships_the_driver_and_a_torchscript_model(mofal_codes, cu_model, cu_structure):
    compiled = orm.SinglefileData(MODEL, filename='model.pt').store()  # stands in for the archive: never run here
    inputs = {'code': mofal_codes['python-mace'], 'model': cu_model, 'compiled_model': compiled,
              'structure': cu_structure, 'settings': orm.Dict(load_md_settings('nvt')),
              'engine': orm.Str('lammps-python'), 'metadata': {'options': OPTIONS}}  # fmt: skip
    files, config, calcinfo, folder = prepared(inputs)
    assert set(files) >= {'md_run.py', 'md_input.json', 'walk_0/structure.npz', 'mofal_md/__init__.py',
                          *SHIPPED_MODULES}  # fmt: skip
    assert config['engine'] == 'lammps-python' and config['model_format'] == 'torchscript'
    assert config['walltime_seconds'] == 600 and config['walks'][0]['settings']['ensemble'] == 'nvt'
    assert [entry[2] for entry in calcinfo.local_copy_list] == ['model.pt']
    assert calcinfo.codes_info[0].cmdline_params == ['md_run.py', 'md_input.json']
    assert ('walk_*/trajectory.npz', '.', 2) in calcinfo.retrieve_temporary_list
    with np.load(folder.get_abs_path('walk_0/structure.npz')) as structure:
        assert np.allclose(structure['positions'], cu_structure.get_ase().positions)


def test_several_reaxff_walks_with_restart_and_files(mofal_codes, aiida_profile):
    zif = orm.StructureData(ase=read_structure('ZnIm2-sod_Lewis2009.cif'))
    settings = orm.Dict(load_md_settings('nvt'))
    restart = orm.SinglefileData(MODEL, filename='restart.npz').store()  # any file: only its copy is checked
    inputs = {
        'code': mofal_codes['python-mace'], 'engine': orm.Str('lammps-reaxff'),
        'force_field': force_field(FORCEFIELDS / 'ffield_ZnN_2016.reax'),
        'control': control_file(FORCEFIELDS / 'lmp_control.reax'),
        'reaxff': orm.Dict({'minimize': True}),
        'walks': {'late': {'structure': zif, 'settings': settings, 'index': orm.Int(3), 'restart': restart},
                  'early': {'structure': zif, 'index': orm.Int(1)}},
        'metadata': {'options': OPTIONS},
    }  # fmt: skip
    _, config, calcinfo, _ = prepared(inputs)
    assert [walk['index'] for walk in config['walks']] == [1, 3]  # ordered by index, whatever the names
    assert config['walks'][0]['settings'] is None and config['walks'][1]['restart_file'] == 'walk_1/start.npz'
    assert config['reaxff']['minimize']['max_iterations'] == 200 and config['reaxff']['control_file'] == 'control.reax'
    targets = sorted(entry[2] for entry in calcinfo.local_copy_list)
    assert targets == ['control.reax', 'ffield.reax', 'walk_1/start.npz'] and 'model_file' not in config


def test_force_field_nodes_are_checked_and_reused(aiida_profile, tmp_path):
    stored = force_field(FORCEFIELDS / 'ffield_ZnN_2016.reax').store()
    assert force_field(FORCEFIELDS / 'ffield_ZnN_2016.reax').uuid == stored.uuid
    (tmp_path / 'bad.reax').write_text('nbrhood_cutof 5.0\n')
    with pytest.raises(ValueError, match='unknown ReaxFF control setting'):
        control_file(tmp_path / 'bad.reax')
    with pytest.raises(ValueError, match='ffield'):
        force_field(tmp_path / 'bad.reax')


def test_a_gate_is_refused_unless_it_can_run(aiida_profile):
    from aiida_mofal.calculations.md import _check_gate

    gate = orm.Dict({'unknown_fraction': 0.02, 'every': 2})
    assert _check_gate({}, 'ase') is None  # no gate: fixed-length walks
    assert 'both `gate` and `density_model`' in _check_gate({'gate': gate}, 'ase')
    assert 'engine ase only' in _check_gate({'gate': gate, 'density_model': orm.Dict()}, 'lammps-python')
    assert 'must be a mofal.density_model' in _check_gate({'gate': gate, 'density_model': orm.Dict()}, 'ase')
    for bad, message in (({'unknown_fraction': 0.0}, 'in (0, 1]'), ({'unknown_fraction': 0.1, 'every': 0}, 'every'),
                         ({'unknown_fraction': 0.1, 'steps': 3}, 'takes unknown_fraction and every only')):  # fmt: skip
        assert message in _check_gate({'gate': orm.Dict(bad), 'density_model': orm.Dict()}, 'ase')


def test_a_gated_job_gets_the_density_model_and_mace_file_beside_the_archive(mofal_codes, cu_model, cu_structure):
    from aiida_mofal.data.density_model import DensityModelData
    from aiida_mofal.uncertainty.gmm import DensityModel

    rng = np.random.default_rng(0)
    density = DensityModelData(DensityModel.fit(rng.normal(size=(60, 8)), ['Cu'] * 60, max_components=1),
                               model=cu_model).store()  # fmt: skip
    compiled = orm.SinglefileData(MODEL, filename='model.pt').store()
    inputs = {'code': mofal_codes['python-mace'], 'model': cu_model, 'compiled_model': compiled,
              'structure': cu_structure, 'settings': orm.Dict(load_md_settings('nvt')), 'engine': orm.Str('ase'),
              'gate': orm.Dict({'unknown_fraction': 0.05, 'every': 2}), 'density_model': density,
              'metadata': {'options': OPTIONS}}  # fmt: skip
    files, config, calcinfo, folder = prepared(inputs)
    assert {'model.model', 'density_model.npz', 'mofal_md/gate.py', 'mofal_md/features.py', 'mofal_md/gmm.py'} <= set(
        files
    )
    assert config['gate'] == {'unknown_fraction': 0.05, 'every': 2, 'feature_model': 'model.model',
                              'density_model': 'density_model.npz'}  # fmt: skip
    assert config['model_format'] == 'torchscript'  # MD stays TorchScript; the features use MACE's own file
