"""The TorchScript archive of a model: compiled once, reused, and a model torch cannot script is a finished node."""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
from aiida import orm
from aiida.common.links import LinkType

from aiida_mofal.calculations.torchscript import NOT_SCRIPTABLE, get_torchscript_model
from aiida_mofal.data.mace_model import MaceModelData
from tests.conftest import ROOT
from tests.mlp.mace_models import assert_same_predictions

MODEL = ROOT / 'tests' / 'data_files' / 'md' / 'cu_emt_tiny.model'
XTB_FRAMES = ROOT / 'tests' / 'data_files' / 'xtb' / 'organics_gfn1xtb.extxyz'


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


def test_a_trained_model_compiles_and_gives_what_mace_gives(trained_tiny_model, tmp_path):
    """The trained models carry e3nn's gate (``Activation``), which a bare ``torch.jit.script`` refuses; e3nn's compile
    takes it, and the archive gives mace-torch's energy, forces and stress."""
    from ase.io import read

    from aiida_mofal.md.torchscript import TorchScriptCalculator

    model = trained_tiny_model.model
    archive, why = get_torchscript_model(model)
    assert why is None, why
    path = tmp_path / 'model.pt'
    path.write_bytes(archive.get_content(mode='rb'))
    atoms = read(XTB_FRAMES, index=0)  # pyrrole, in a periodic box so that the stress is defined
    atoms.calc = None
    atoms.set_cell([9.0, 9.5, 10.0])
    atoms.center()
    atoms.pbc = True
    # both in the model's own dtype
    assert_same_predictions(atoms, model.get_calculator(), TorchScriptCalculator(path), (1e-4, 1e-5, 1e-7), 0.01)


def test_a_model_torch_cannot_script_gives_a_finished_node_with_the_reason(aiida_profile, monkeypatch):
    """When torch refuses a model (a block no compile mode takes), the node finishes with the reason, asked once."""
    import aiida_mofal.md.torchscript

    def refuse(*args, **kwargs):
        raise RuntimeError("Can't redefine method: forward on class: __torch__.SomeBlock")

    monkeypatch.setattr(aiida_mofal.md.torchscript, 'compile_model', refuse)
    model = MaceModelData(MODEL, trusted=True).store()
    archive, why = get_torchscript_model(model)
    assert archive is None and why.startswith("TorchScript cannot compile this model: Can't redefine method")
    (node,) = compilations(model)
    assert node.is_finished and node.exit_status == NOT_SCRIPTABLE and not node.is_excepted
    assert get_torchscript_model(model) == (None, why) and len(compilations(model)) == 1
