"""YAML presets (xtb / fast / moderate / precise, tiny / small / medium, ...) for every engine.

A protocol file holds ``default_inputs``, ``default_protocol`` and named ``protocols`` whose entries override the
defaults, as in aiida-quantumespresso. Unlike there, overrides are *validated*: a key that the defaults do not
have is an error naming the key and the keys that exist (a typo never passes silently), except below the paths
a caller declares free-form (e.g. raw CP2K input sections). Nothing is mutated in place.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import yaml

__all__ = ('ProtocolError', 'available_protocols', 'load_protocol', 'merge_overrides', 'read_protocol_file')


class ProtocolError(ValueError):
    """A protocol name or an override that the protocol file does not know."""


def read_protocol_file(name: str) -> dict:
    """Return the parsed YAML file ``<name>.yaml`` shipped in this package."""
    path = resources.files(__name__).joinpath(f'{name}.yaml')
    if not path.is_file():
        raise ProtocolError(f'no protocol file {name!r} in aiida_mofal.protocols')
    with path.open() as handle:
        return yaml.safe_load(handle)


def available_protocols(name: str) -> dict[str, str]:
    """Map each protocol of file ``name`` to its description."""
    content = read_protocol_file(name)
    return {key: value.get('description', '') for key, value in content['protocols'].items()}


def _suggest(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1)
    return f' Did you mean {close[0]!r}?' if close else ''


def merge_overrides(
    base: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    *,
    free_form: Iterable[str] = (),
    _path: str = '',
) -> dict:
    """Return a deep copy of ``base`` updated with ``overrides``, refusing keys that ``base`` does not have.

    :param free_form: dotted paths (e.g. ``'cp2k_input'``) below which any key is accepted.
    :raises ProtocolError: for an unknown key, naming its full dotted path and the valid keys.
    """
    merged = copy.deepcopy(dict(base))
    free_form = tuple(free_form)
    for key, value in (overrides or {}).items():
        path = f'{_path}.{key}' if _path else str(key)
        is_free = any(path.startswith(f'{free}.') for free in free_form)
        if key not in merged and not is_free:
            valid = ', '.join(sorted(map(str, merged))) or '(none)'
            raise ProtocolError(f'unknown override {path!r}.{_suggest(str(key), map(str, merged))} Valid keys: {valid}')
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_overrides(merged[key], value, free_form=free_form, _path=path)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_protocol(
    name: str,
    protocol: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    free_form: Iterable[str] = (),
) -> dict:
    """Return the inputs of ``protocol`` from file ``name``, with validated ``overrides`` applied.

    :param name: the protocol file (``label``, ``mace``, ``md``, ...).
    :param protocol: one of the file's protocols; ``None`` means its ``default_protocol``.
    :raises ProtocolError: for an unknown protocol or an unknown override key.
    """
    content = read_protocol_file(name)
    protocol = protocol or content['default_protocol']
    if protocol not in content['protocols']:
        hint = _suggest(protocol, content['protocols'])
        raise ProtocolError(f'unknown {name} protocol {protocol!r}.{hint} Known: {", ".join(content["protocols"])}')
    chosen = {key: value for key, value in content['protocols'][protocol].items() if key != 'description'}
    inputs = merge_overrides(content['default_inputs'], chosen, free_form=free_form)
    inputs = merge_overrides(inputs, overrides, free_form=free_form)
    inputs['protocol'] = protocol
    return inputs
