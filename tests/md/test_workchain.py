"""MdBaseWorkChain: builder from protocol, and the blow-up handler for real (an absurd timestep)."""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mofal.calculations.md import MdCalculation
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.protocols import ProtocolError
from aiida_mofal.workchains.md import MdBaseWorkChain

OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': 1}}


@pytest.fixture(scope='module')
def cu_model(aiida_profile, cu_model_file):
    return MaceModelData(cu_model_file).store()


@pytest.fixture
def cu_structure(aiida_profile):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=5)
    return orm.StructureData(ase=atoms)


def test_builder_from_protocol(aiida_profile, mofal_codes, cu_model, cu_structure):
    builder = MdBaseWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], cu_structure, cu_model, protocol='melt_quench', engine='lammps-python'
    )
    settings = builder.md.settings.get_dict()
    assert settings['ensemble'] == 'nvt' and settings['fail_on_broken_bonds'] is True
    assert settings['schedule'][1]['temperature'] == [300.0, 1500.0]
    assert builder.md.engine.value == 'lammps-python'
    overrides = {'schedule': [{'steps': 10, 'temperature': 400.0, 'pressure': -1.0}]}
    builder = MdBaseWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], cu_structure, cu_model, overrides=overrides
    )
    assert builder.md.settings['schedule'] == [{'steps': 10, 'temperature': [400.0, 400.0], 'pressure': [-1.0, -1.0],
                                                'timestep': 0.5}]  # fmt: skip
    with pytest.raises(ProtocolError, match='temprature'):
        MdBaseWorkChain.get_builder_from_protocol(
            mofal_codes['python-mace'], cu_structure, cu_model, overrides={'temprature': 300}
        )
    with pytest.raises(ValueError, match='unknown MD engine'):
        MdBaseWorkChain.get_builder_from_protocol(mofal_codes['python-mace'], cu_structure, cu_model, engine='x')


@pytest.mark.engine
def test_blowup_halves_the_timestep_and_continues(aiida_profile, mofal_codes, cu_model, cu_structure):
    """40 fs blows copper up within a few steps; 20 fs runs: one halving, continued from the last good frame."""
    overrides = {
        'ensemble': 'nvt',
        'timestep': 40.0,
        'schedule': [{'steps': 20, 'temperature': 300.0}],
        'dump_every': 2,
        'thermo_every': 2,
    }
    builder = MdBaseWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], cu_structure, cu_model, overrides=overrides, engine='ase', options=OPTIONS
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    calcs = sorted(node.called, key=lambda n: n.ctime)
    calcs = [c for c in calcs if c.process_class is MdCalculation]
    assert len(calcs) == 2
    assert calcs[0].exit_status == MdCalculation.exit_codes.ERROR_BLOWUP.status
    first_settings, second_settings = calcs[0].inputs.settings, calcs[1].inputs.settings
    assert second_settings['timestep'] == first_settings['timestep'] / 2
    done = calcs[0].outputs.result['completed_steps']
    assert 0 < done < 20
    assert second_settings['schedule'][0]['steps'] == 2 * (20 - done)
    assert 'restart' in calcs[1].inputs
    trajectory = results['trajectory']
    assert trajectory.base.attributes.get('segments') == 2
    times = trajectory.get_array('times')
    assert np.all(np.diff(times) > 0)
    assert times[-1] == pytest.approx(20 * 40.0)  # the protocol's simulated time, in two segments
    assert results['integrity']['summary']['intact']
