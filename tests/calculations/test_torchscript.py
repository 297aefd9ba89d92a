"""The TorchScript archive of a model: compiled once, reused, and a model torch cannot script is a finished node."""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
from aiida import orm
from aiida.common.links import LinkType

from aiida_mofal.calculations.torchscript import NOT_SCRIPTABLE, get_torchscript_model
from aiida_mofal.data.mace_model import MaceModelData
from tests.conftest import ROOT

MODEL = ROOT / 'tests' / 'data_files' / 'md' / 'cu_emt_tiny.model'


def compilations(model) -> list:
    return [
        link.node
        for link in model.base.links.get_outgoing(link_type=LinkType.INPUT_CALC).all()
        if link.node.base.attributes.get('function_name', None) == 'torchscript_model'
    ]


def test_a_model_is_compiled_once_and_the_archive_is_reused(aiida_profile):
    model = MaceModelData(MODEL, trusted=True).store()
    archive, why = get_torchscript_model(model)
    assert why is None and isinstance(archive, orm.SinglefileData)
    assert archive.base.attributes.get('format') == 'torchscript'
    again, _ = get_torchscript_model(model)
    assert again.uuid == archive.uuid and len(compilations(model)) == 1


def test_a_model_torch_cannot_script_gives_a_finished_node_with_the_reason(trained_tiny_model):
    """The tiny trained model has an e3nn gate torch.jit refuses: no excepted node, the reason kept, asked once."""
    model = trained_tiny_model.model
    archive, why = get_torchscript_model(model)  # with the pinned torch/e3nn (requirements/constraints.txt)
    assert archive is None and why.startswith('TorchScript cannot compile this model: ')
    (node,) = compilations(model)
    assert node.is_finished and node.exit_status == NOT_SCRIPTABLE and not node.is_excepted
    assert get_torchscript_model(model) == (None, why) and len(compilations(model)) == 1
