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
from aiida.engine import calcfunction

from aiida_mofal.data.mace_model import MaceModelData

__all__ = ['FILENAME', 'get_torchscript_model', 'torchscript_model']

FILENAME = 'model.pt'


@calcfunction
def torchscript_model(model: MaceModelData) -> orm.SinglefileData:
    """Compile ``model`` to TorchScript (in its own dtype); the archive needs only torch to run."""
    from aiida_mofal.md.torchscript import compile_model

    dtype = model.base.attributes.get('dtype', 'float64')
    with tempfile.TemporaryDirectory() as directory:
        target = compile_model(model.get_module(), Path(directory) / FILENAME, dtype)  # rebuilt from the weights
        node = orm.SinglefileData(target, filename=FILENAME)
    node.base.attributes.set_many({'dtype': dtype, 'format': 'torchscript'})
    return node


def get_torchscript_model(model: MaceModelData) -> orm.SinglefileData:
    """Return the TorchScript archive of ``model``: the one compiled before, else a new one (``model`` is stored)."""
    if not model.is_stored:
        model.store()
    query = orm.QueryBuilder()
    query.append(MaceModelData, filters={'id': model.pk}, tag='model')
    query.append(
        orm.CalcFunctionNode,
        with_incoming='model',
        filters={'attributes.function_name': 'torchscript_model', 'attributes.exit_status': 0},
        tag='compile',
    )
    query.append(orm.SinglefileData, with_incoming='compile')
    existing = query.first(flat=True)
    return existing if existing is not None else torchscript_model(model)
