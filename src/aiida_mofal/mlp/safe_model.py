"""MACE models stored as weights plus the hyperparameters that rebuild them: loading never runs code (issue 18).

A MACE ``.model`` file is a pickle of the whole ``torch.nn.Module``; ``torch.load(weights_only=False)`` on it runs
whatever the pickle says, so a file named ``.model`` from anyone (a download, a colleague, an imported AiiDA
archive) can run any code as the user who loads it. This module keeps models in a form that
``torch.load(weights_only=True)`` reads -- tensors, numbers, strings, lists and dicts, nothing callable:

* ``format`` (:data:`FORMAT`), ``model_class`` (``MACE`` or ``ScaleShiftMACE``),
* ``config``: the constructor arguments of the model (MACE's own
  ``mace.tools.scripts_utils.extract_config_mace_model``), with the few that are Python objects written as names
  (the interaction and readout blocks, the gate, irreps) and rebuilt only from allow-lists: the classes of
  ``mace.modules.blocks`` and ``interaction_classes``, and :data:`GATES`,
* ``state_dict``: the weights.

:func:`load_model` rebuilds the module from such a file. A MACE pickle is loaded only when the caller says it
is trusted (``trusted=True``; the CLI's ``--trust-model-file``) and is then converted (:func:`save_weights`), so
it is unpickled once, by the person who vouched for it, and never again. Everything else is refused with
:class:`UnsafeModelError`, which says what the file is and how to opt in.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ('FORMAT', 'UnsafeModelError', 'load_model', 'load_payload', 'model_payload', 'save_weights')

FORMAT = 'mofal-mace-weights/1'
MODEL_CLASSES = ('MACE', 'ScaleShiftMACE')
GATES = {'silu': 'silu', 'tanh': 'tanh', 'abs': 'abs', 'None': None}


class UnsafeModelError(ValueError):
    """A model file that cannot be loaded without running code from it (and the caller did not trust it)."""


def _interactions() -> dict[str, type]:
    """Return the classes a config may name: MACE's own building blocks (interaction, readout), nothing else."""
    import torch
    from mace.modules import blocks, interaction_classes

    found = {
        name: value
        for name, value in vars(blocks).items()
        if isinstance(value, type) and issubclass(value, torch.nn.Module) and value.__module__.startswith('mace.')
    }
    return {**found, **dict(interaction_classes)}


def _gate_name(gate) -> str:
    if gate is None:
        return 'None'
    import torch

    for name in ('silu', 'tanh', 'abs'):
        if gate is getattr(torch.nn.functional, name, None) or gate is getattr(torch, name, None):
            return name
    raise UnsafeModelError(f'cannot store a MACE model whose gate is {gate!r}: only silu, tanh, abs or none.')


def _encode(key: str, value: Any) -> Any:
    """Return ``value`` as something ``weights_only`` loads: plain data, tensors, or a tagged name."""
    import numpy as np
    import torch
    from e3nn import o3

    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return value
    if isinstance(value, type):
        found = [name for name, cls in _interactions().items() if cls is value]
        if not found:
            raise UnsafeModelError(
                f'cannot store a MACE model whose {key} is {value.__name__} (not a MACE building block).'
            )
        return {'__interaction__': found[0]}
    if key == 'gate' or callable(value) and not isinstance(value, o3.Irreps):
        return {'__gate__': _gate_name(value)}
    if isinstance(value, o3.Irreps):
        return {'__irreps__': str(value)}
    if isinstance(value, np.ndarray | np.generic):
        return {'__ndarray__': torch.as_tensor(np.asarray(value))}
    if isinstance(value, list | tuple):
        return [_encode(key, item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _encode(f'{key}.{k}', v) for k, v in value.items()}
    raise UnsafeModelError(f'cannot store a MACE model whose {key} is a {type(value).__name__}.')


def _decode(key: str, value: Any) -> Any:
    """Invert :func:`_encode`, building objects only from the allow-lists."""
    import torch
    from e3nn import o3

    if isinstance(value, Mapping):
        if set(value) == {'__interaction__'}:
            name = value['__interaction__']
            if name not in _interactions():
                raise UnsafeModelError(f'{key}: {name!r} is not a MACE building block.')
            return _interactions()[name]
        if set(value) == {'__gate__'}:
            if value['__gate__'] not in GATES:
                raise UnsafeModelError(f'{key}: gate {value["__gate__"]!r} is not one of {", ".join(GATES)}.')
            name = GATES[value['__gate__']]
            return None if name is None else getattr(torch.nn.functional, name, None) or getattr(torch, name)
        if set(value) == {'__irreps__'}:
            return o3.Irreps(str(value['__irreps__']))
        if set(value) == {'__ndarray__'}:
            return value['__ndarray__'].numpy()
        return {k: _decode(f'{key}.{k}', v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(key, item) for item in value]
    return value


def model_payload(model) -> dict:
    """Return the weights-only form of a MACE ``torch.nn.Module`` (see the module docstring)."""
    from mace.tools.scripts_utils import extract_config_mace_model

    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise UnsafeModelError(f'a {name} is not a MACE model ({" or ".join(MODEL_CLASSES)}).')
    config = extract_config_mace_model(model)
    if 'error' in config:
        raise UnsafeModelError(f'cannot read the hyperparameters of this {name}: {config["error"]}')
    parameter = next(model.parameters())
    return {
        'format': FORMAT,
        'model_class': name,
        'dtype': str(parameter.dtype).replace('torch.', ''),
        'config': {key: _encode(key, value) for key, value in config.items()},
        'state_dict': {key: tensor.detach().cpu() for key, tensor in model.state_dict().items()},
    }


def save_weights(model, path: str | Path | None = None) -> bytes:
    """Write (to ``path``, if given) and return the bytes of the weights-only file of ``model``."""
    import torch

    buffer = io.BytesIO()
    torch.save(model_payload(model), buffer)
    content = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(content)
    return content


def load_payload(source: str | Path | bytes) -> dict | None:
    """Return the payload of a weights-only file, or None when the file is something else (a pickle, garbage).

    Only ``torch.load(weights_only=True)`` touches the file: it refuses every Python object but tensors and plain
    data before constructing it, so a hostile file cannot run code here.
    """
    import torch

    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        payload = torch.load(handle, map_location='cpu', weights_only=True)
    except Exception:  # noqa: BLE001 -- a pickle of objects (refused by the safe unpickler), or not torch at all
        return None
    if not isinstance(payload, Mapping) or payload.get('format') != FORMAT:
        return None
    return dict(payload)


def rebuild(payload: Mapping):
    """Return the MACE module that ``payload`` describes (eval mode, its own dtype)."""
    import mace.modules
    import torch

    name = payload.get('model_class')
    if name not in MODEL_CLASSES:
        raise UnsafeModelError(f'model class {name!r} is not one of {", ".join(MODEL_CLASSES)}.')
    config = {key: _decode(key, value) for key, value in dict(payload['config']).items()}
    dtype = {'float64': torch.float64, 'float32': torch.float32}.get(payload.get('dtype'), torch.float64)
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype)
        model = getattr(mace.modules, name)(**config)
    except TypeError as error:
        raise UnsafeModelError(f'the stored hyperparameters do not build a {name}: {error}') from None
    finally:
        torch.set_default_dtype(previous)
    missing, unexpected = model.load_state_dict(dict(payload['state_dict']), strict=False)
    if missing or unexpected:
        raise UnsafeModelError(
            f'the stored weights do not fit a {name}: missing {missing[:3]}, unexpected {unexpected[:3]}.'
        )
    return model.to(dtype).eval()


def load_model(path: str | Path, *, trusted: bool = False):
    """Return the MACE module of ``path``: a weights-only file, or (only if ``trusted``) a MACE pickle.

    :raises UnsafeModelError: for a pickle when not ``trusted`` (saying how to opt in), or a file that is no
        MACE model at all.
    """
    payload = load_payload(path)
    if payload is not None:
        return rebuild(payload)
    if not trusted:
        raise UnsafeModelError(
            f'{path} is not a weights-only MACE model file. It may be a MACE .model pickle: loading one runs any '
            'code it contains, so aiida-mofal loads it only when you vouch for it. If you made this file yourself '
            '(mace_run_train, aiida-mofal) or got it from someone you trust, pass --trust-model-file (Python: '
            'trusted=True); it is then converted once to weights plus hyperparameters and never unpickled again.'
        )
    import mace  # noqa: F401  (before torch.load: mace lets e3nn load its constants)
    import torch

    try:
        model = torch.load(str(path), map_location='cpu', weights_only=False)  # the caller vouched for this file
    except Exception as exception:  # noqa: BLE001 -- not a torch file, truncated, ...
        raise UnsafeModelError(f'{path} is not a loadable MACE model file: {exception}') from None
    if type(model).__name__ not in MODEL_CLASSES:
        raise UnsafeModelError(f'{path} holds a {type(model).__name__}, not a MACE model.')
    return model.eval()
