"""The ``mofal.md`` CalcJob for real on localhost with the ``python-mace`` code, and its parser's outputs."""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mofal.calculations.md import MdCalculation, check_md_inputs
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.md.protocol import load_md_settings
from aiida_mofal.mlp.configurations import read_extxyz

OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': 1}}


@pytest.fixture(scope='module')
def cu_model(aiida_profile, cu_model_file):
    return MaceModelData(cu_model_file).store()


@pytest.fixture
def cu_structure(aiida_profile):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=5)
    return orm.StructureData(ase=atoms)


def test_check_md_inputs_refuses_bad_inputs(aiida_profile, cu_model, cu_structure, tiny_mace_model_file):
    settings = load_md_settings('nvt')
    with pytest.raises(ValueError, match='unknown MD engine'):
        check_md_inputs(cu_structure, cu_model, settings, 'gromacs')
    other = MaceModelData(tiny_mace_model_file)
    with pytest.raises(ValueError, match='contains Cu'):
        check_md_inputs(cu_structure, other, settings, 'ase')
    flat = cu_structure.clone()
    flat.pbc = (True, True, False)
    with pytest.raises(ValueError, match='periodic cells only'):
        check_md_inputs(flat, cu_model, settings, 'ase')
    with pytest.raises(ValueError, match='timestep'):
        check_md_inputs(cu_structure, cu_model, {**settings, 'timestep': -1.0}, 'ase')


@pytest.mark.engine
@pytest.mark.parametrize('engine', ['ase', 'lammps-python'])
def test_md_calculation_runs_on_localhost(aiida_profile, mofal_codes, cu_model, cu_structure, engine, tmp_path):
    settings = load_md_settings(
        'explore', {'timestep': 2.0, 'schedule': [{'steps': 40, 'temperature': 300.0, 'pressure': 0.5}]}
    )
    results, node = run_get_node(
        MdCalculation,
        code=mofal_codes['python-mace'],
        structure=cu_structure,
        model=cu_model,
        settings=orm.Dict(settings),
        engine=orm.Str(engine),
        metadata={'options': OPTIONS},
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    trajectory = results['trajectory']
    assert isinstance(trajectory, MdTrajectoryData)
    assert trajectory.num_frames == 5 and trajectory.num_atoms == 32
    assert trajectory.engine == engine
    assert trajectory.base.attributes.get('completed_steps') == 40
    assert set(trajectory.base.attributes.get('summary')) >= {'temperature', 'pressure', 'volume'}
    positions = trajectory.get_array('positions')
    assert np.allclose(results['structure'].get_ase().positions, positions[-1])
    assert results['integrity']['summary']['intact']  # copper has no non-metal bonds to break
    assert results['result']['status'] == 'finished'
    thermo = trajectory.get_thermo()
    assert len(thermo['temperature']) == 5 and np.all(thermo['target_pressure'] == 0.5)
    frames = read_extxyz(trajectory.export(tmp_path / 'frames.xyz'))
    assert len(frames) == 5
    assert frames[-1].info['REF_energy'] == pytest.approx(trajectory.get_array('energies')[-1])
    assert np.allclose(frames[2].arrays['REF_forces'], trajectory.get_array('forces')[2])


def test_md_calculation_refuses_unknown_engine_before_submission(aiida_profile, mofal_codes, cu_model, cu_structure):
    with pytest.raises(ValueError, match='unknown MD engine'):
        run_get_node(
            MdCalculation,
            code=mofal_codes['python-mace'],
            structure=cu_structure,
            model=cu_model,
            settings=orm.Dict(load_md_settings('nvt')),
            engine=orm.Str('gromacs'),
            metadata={'options': OPTIONS},
        )
