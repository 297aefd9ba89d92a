"""Read and change CP2K input dictionaries (aiida-cp2k's nested format) the way CP2K reads them: keys ignore case.

CP2K treats ``MAX_SCF``, ``max_scf`` and ``Max_Scf`` as one keyword, so a user's ``overrides`` and the generated
input may spell one key differently. Every function here matches keys case-insensitively and never leaves two
spellings of one key behind.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ('get_keyword', 'merge_sections', 'section', 'set_keyword')


def _matching(mapping: Mapping, key: str) -> list[str]:
    return [existing for existing in mapping if str(existing).upper() == key.upper()]


def section(parameters: dict, *path: str) -> dict:
    """Return the nested section at ``path`` (e.g. ``'FORCE_EVAL', 'DFT', 'SCF'``), created when absent."""
    node = parameters
    for key in path:
        found = _matching(node, key)
        if not found:
            node[key] = {}
            found = [key]
        node = node[found[0]]
    return node


def get_keyword(section_: Mapping, key: str, default: Any = None) -> Any:
    """Return the value of keyword ``key`` of a section, whatever its case, or ``default``."""
    found = _matching(section_, key)
    return section_[found[0]] if found else default


def set_keyword(section_: dict, key: str, value: Any) -> None:
    """Set keyword ``key`` of a section to ``value``, replacing every spelling of it."""
    for existing in _matching(section_, key):
        del section_[existing]
    section_[key] = value


def merge_sections(base: Mapping, extra: Mapping) -> dict:
    """Deep-merge CP2K input ``extra`` into a copy of ``base`` (keys compared case-insensitively)."""
    merged = copy.deepcopy(dict(base))
    for key, value in extra.items():
        found = _matching(merged, str(key))
        match = found[0] if found else key
        if isinstance(value, Mapping) and isinstance(merged.get(match), Mapping):
            merged[match] = merge_sections(merged[match], value)
        else:
            merged[match] = copy.deepcopy(value)
    return merged
