"""MdBaseWorkChain: the builder, and each handler alone against a fake finished child (walk by walk)."""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import pytest
from aiida import orm
from ase.build import bulk

from aiida_mofal.calculations.md import MdCalculation
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.protocols import ProtocolError
from aiida_mofal.workchains.md import MdBaseWorkChain
from tests.conftest import ROOT

from .md_children import attach_child, instantiate

EXIT = MdCalculation.exit_codes
OVERRIDES = {'ensemble': 'nvt', 'timestep': 2.0, 'dump_every': 10, 'schedule': [{'steps': 100, 'temperature': 300.0}]}


def ended(*walks):
    """The walks of a fake child: (status, completed steps) each, named as the builder names them."""
    return [
        {'name': f'walk_{index}', 'status': status, 'completed': done} for index, (status, done) in enumerate(walks)
    ]


@pytest.fixture(scope='module')
def cu_model(aiida_profile):
    return MaceModelData(ROOT / 'tests' / 'data_files' / 'md' / 'cu_emt_tiny.model', trusted=True).store()


@pytest.fixture(scope='module')
def cu_structure(aiida_profile):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=5)
    return orm.StructureData(ase=atoms).store()


@pytest.fixture
def two_walks(mofal_codes, cu_model, cu_structure):
    """A work chain of two walks (seeds 1 and 2), set up but not run."""
    builder = MdBaseWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], cu_structure, cu_model, overrides=OVERRIDES, walks=[{'seed': 1}, {'seed': 2}]
    )
    builder.torchscript = orm.Bool(False)
    return instantiate(builder)


def test_builder_from_protocol(mofal_codes, cu_model, cu_structure):
    code = mofal_codes['python-mace']
    builder = MdBaseWorkChain.get_builder_from_protocol(code, cu_structure, cu_model, protocol='melt_quench',
                                                        engine='lammps-python')  # fmt: skip
    settings = builder.md.settings.get_dict()
    assert settings['ensemble'] == 'nvt' and settings['fail_on_broken_bonds'] is True
    assert settings['schedule'][1]['temperature'] == [300.0, 1500.0] and builder.md.engine.value == 'lammps-python'
    walks = MdBaseWorkChain.get_builder_from_protocol(
        code, cu_structure, cu_model, overrides=OVERRIDES,
        walks=[{'seed': 3}, {'seed': 4, 'schedule': [{'steps': 10, 'temperature': 600.0}]}],
    )  # fmt: skip
    assert sorted(walks.md.walks) == ['walk_0', 'walk_1'] and 'structure' not in walks.md
    assert [walks.md.walks[name]['index'].value for name in ('walk_0', 'walk_1')] == [0, 1]
    assert walks.md.walks['walk_1']['settings']['schedule'][0]['temperature'] == [600.0, 600.0]
    assert walks.md.walks['walk_0']['settings']['seed'] == 3
    with pytest.raises(ProtocolError, match='temprature'):
        MdBaseWorkChain.get_builder_from_protocol(code, cu_structure, cu_model, walks=[{'temprature': 300}])
    with pytest.raises(ValueError, match='unknown MD engine'):
        MdBaseWorkChain.get_builder_from_protocol(code, cu_structure, cu_model, engine='x')
    with pytest.raises(ValueError, match='walks is empty'):
        MdBaseWorkChain.get_builder_from_protocol(code, cu_structure, cu_model, walks=[])


def test_setup_and_next_inputs(two_walks):
    assert [walk['state'] for walk in two_walks.ctx.walks] == ['running', 'running']
    assert not two_walks.ctx.single
    two_walks._next_inputs()
    assert sorted(two_walks.ctx.inputs.walks) == ['walk_0', 'walk_1']


def test_handle_blowup_halves_the_timestep_of_that_walk_only(two_walks, aiida_localhost):
    node = attach_child(two_walks, aiida_localhost, EXIT.ERROR_BLOWUP, ended(('blowup', 30), ('finished', 100)))
    report = two_walks.handle_blowup(node)
    assert report.do_break and report.exit_code.status == 0
    blown, finished = two_walks.ctx.walks
    assert finished['state'] == 'done' and len(finished['segments']) == 1
    assert blown['state'] == 'running' and blown['halvings'] == 1
    assert blown['settings']['timestep'] == 1.0 and blown['settings']['schedule'][0]['steps'] == 2 * 70
    assert blown['restart'].uuid == node.outputs.walks.walk_0.restart.uuid
    two_walks._next_inputs()
    assert list(two_walks.ctx.inputs.walks) == ['walk_0']  # the finished walk is not run again
    assert two_walks.ctx.inputs.walks['walk_0']['settings']['timestep'] == 1.0


def test_handle_blowup_gives_up_after_max_halvings(two_walks, aiida_localhost):
    two_walks.ctx.walks[0]['halvings'] = two_walks.inputs.max_halvings.value
    node = attach_child(two_walks, aiida_localhost, EXIT.ERROR_LOST_ATOMS, ended(('lost_atoms', 30), ('finished', 100)))
    two_walks.handle_blowup(node)
    assert two_walks.ctx.walks[0]['state'] == 'blowup' and two_walks.ctx.is_finished
    exit_code = two_walks._given_up([two_walks.ctx.walks[0]])
    assert exit_code.status == MdBaseWorkChain.exit_codes.ERROR_BLOWUP_UNRECOVERABLE.status and '0' in exit_code.message


def test_handle_out_of_walltime_continues_each_unfinished_walk(two_walks, aiida_localhost):
    node = attach_child(
        two_walks, aiida_localhost, EXIT.ERROR_OUT_OF_WALLTIME, ended(('walltime', 40), ('walltime', 0))
    )
    report = two_walks.handle_out_of_walltime(node)
    assert report.do_break and not two_walks.ctx.is_finished
    started, waiting = two_walks.ctx.walks
    assert started['settings']['schedule'][0]['steps'] == 60 and started['settings']['timestep'] == 2.0
    assert started['restart'] is not None and started['halvings'] == 0
    assert waiting['restart'] is None and waiting['settings']['schedule'][0]['steps'] == 100  # starts again


def test_handle_nan_in_model_stops_that_walk(two_walks, aiida_localhost):
    node = attach_child(two_walks, aiida_localhost, EXIT.ERROR_NAN_IN_MODEL, ended(('nan', 20), ('walltime', 50)))
    two_walks.handle_nan_in_model(node)
    assert [walk['state'] for walk in two_walks.ctx.walks] == ['nan', 'running']
    assert two_walks.ctx.walks[0]['message'] == 'nan'


def test_handle_broken_bonds_keeps_the_record_and_finishes(two_walks, aiida_localhost):
    node = attach_child(
        two_walks, aiida_localhost, EXIT.ERROR_BROKEN_BONDS, ended(('broken_bonds', 100), ('finished', 100))
    )
    two_walks.handle_broken_bonds(node)
    assert [walk['state'] for walk in two_walks.ctx.walks] == ['broken_bonds', 'done'] and two_walks.ctx.is_finished
    assert 'trajectory' in two_walks.ctx.walks[0]['last']


def test_handlers_answer_only_their_exit_codes(two_walks, aiida_localhost):
    node = attach_child(two_walks, aiida_localhost, EXIT.ERROR_SCRIPT_FAILED, [])
    for handler in (two_walks.handle_blowup, two_walks.handle_out_of_walltime, two_walks.handle_nan_in_model,
                    two_walks.handle_broken_bonds):  # fmt: skip
        assert handler(node) is None
    assert [walk['state'] for walk in two_walks.ctx.walks] == ['running', 'running']
