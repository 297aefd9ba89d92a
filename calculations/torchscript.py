"""The TorchScript form of a MACE model (a calcfunction), so MD jobs start without importing mace-torch.

:func:`torchscript_model` compiles a ``mofal.mace_model`` once (:func:`aiida_mofal.md.torchscript.compile_model`);
:func:`get_torchscript_model` returns the archive made before for the same model, or makes it. ``MdCalculation``
takes it as input ``compiled_model`` and its driver evaluates it with
:class:`~aiida_mofal.md.torchscript.TorchScriptCalculator`, with the same energies, forces and stresses as
``MACECalculator`` (checked in ``tests/calculations/test_torchscript.py``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiida import orm
from aiida.engine import ExitCode, calcfunction

from aiida_mofal.data.mace_model import MaceModelData

__all__ = ['FILENAME', 'get_torchscript_model', 'torchscript_model']

FILENAME = 'model.pt'
NOT_SCRIPTABLE = 300  # exit status of a compilation torch refused: the jobs then load the model with mace-torch


@calcfunction
def torchscript_model(model: MaceModelData) -> orm.SinglefileData:
    """Compile ``model`` to TorchScript (in its own dtype); the archive needs only torch to run.

    A model torch cannot script (some e3nn blocks) finishes with exit status ``NOT_SCRIPTABLE`` and torch's message,
    not as an excepted node: the fallback to mace-torch is an expected outcome, not a crash.
    """
    from aiida_mofal.md.torchscript import compile_model

    dtype = model.base.attributes.get('dtype', 'float64')
    with tempfile.TemporaryDirectory() as directory:
        try:  # rebuilt from the weights
            target = compile_model(model.get_module(), Path(directory) / FILENAME, dtype)
        except RuntimeError as exception:  # torch.jit's scripting errors are RuntimeErrors
            reason = ' '.join(str(exception).split())[:500]
            return ExitCode(NOT_SCRIPTABLE, f'TorchScript cannot compile this model: {reason}')
        node = orm.SinglefileData(target, filename=FILENAME)
    node.base.attributes.set_many({'dtype': dtype, 'format': 'torchscript'})
    return node


def get_torchscript_model(model: MaceModelData) -> tuple[orm.SinglefileData | None, str | None]:
    """Return ``(archive, None)`` for ``model``'s TorchScript form, or ``(None, why)`` when torch cannot script it.

    An earlier compilation of the same model is reused, a failed one included, so a model is compiled once.
    """
    if not model.is_stored:
        model.store()
    query = orm.QueryBuilder()
    query.append(MaceModelData, filters={'id': model.pk}, tag='model')
    query.append(
        orm.CalcFunctionNode,
        with_incoming='model',
        filters={
            'attributes.function_name': 'torchscript_model',
            'attributes.exit_status': {'in': [0, NOT_SCRIPTABLE]},
        },
        project='*',
    )
    earlier = query.first(flat=True)
    node = earlier if earlier is not None else torchscript_model.run_get_node(model)[1]
    if node.exit_status != 0:
        return None, node.exit_message
    return node.outputs.result, None
