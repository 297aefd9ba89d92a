"""Read-only properties of data nodes that return one stored attribute (what users query, with its docstring)."""

from __future__ import annotations

from typing import Any

__all__ = ['stored_attribute']


def stored_attribute(name: str, doc: str) -> property:
    """Return a property that reads attribute ``name`` of the node, documented by ``doc``."""

    def getter(self) -> Any:
        return self.base.attributes.get(name)

    return property(getter, doc=doc)
