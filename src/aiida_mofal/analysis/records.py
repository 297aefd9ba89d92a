"""JSON-ready records of the analysis results, with the units in the keys.

The results of the mechanics analyses (:mod:`.eos`, :mod:`.pressure_volume`, :mod:`.elastic`) are dataclasses
with plain field names (``b``, ``b_error``); the work chains store them as JSON whose keys carry the units
(``B_GPa``, ``B_GPa_err``). One function makes that mapping so that every result writes its errors, lists and
arrays the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

import numpy as np

__all__ = ('unit_record',)

#: suffix of a field that holds the standard error of the field named without it
ERROR_SUFFIX = '_error'


def _json_ready(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return list(value)
    return value


def unit_record(result: Any, keys: Mapping[str, str], names: Iterable[str] | None = None) -> dict:
    """Return the dataclass ``result``'s fields ``names`` (default: all) under the keys ``keys`` gives them.

    A field missing from ``keys`` keeps its name. A field ``x`` with a standard error ``x_error`` is followed by
    that error as ``<key of x>_err`` (error fields are never listed on their own). Arrays become lists and lists
    are copied, so the record can be changed and dumped as JSON without touching ``result``.
    """
    present = [item.name for item in fields(result)]
    chosen = [name for name in present if not name.endswith(ERROR_SUFFIX)] if names is None else list(names)
    record = {}
    for name in chosen:
        key = keys.get(name, name)
        record[key] = _json_ready(getattr(result, name))
        if f'{name}{ERROR_SUFFIX}' in present:
            record[f'{key}_err'] = _json_ready(getattr(result, f'{name}{ERROR_SUFFIX}'))
    return record
