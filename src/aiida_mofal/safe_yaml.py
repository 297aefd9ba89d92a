"""YAML that a user wrote, read so that what they meant is what runs (issue 18).

``yaml.safe_load`` already refuses tags that build Python objects, but two things it accepts silently are
wrong for settings files: a key written twice (the last one wins, so one of the two settings a user typed is
dropped without a word), and aliases that expand to an enormous document (the "billion laughs" file: nine
nested anchors of ten aliases each are 10⁹ nodes once anything walks them, e.g. validation). :func:`load_yaml`
refuses both, naming the line, and turns every YAML error into :class:`YamlInputError`.
"""

from __future__ import annotations

import yaml

__all__ = ('MAX_NODES', 'YamlInputError', 'load_yaml', 'read_mapping')

MAX_NODES = 100_000  # nodes of the document once aliases are expanded; a real campaign file has a few hundred


class YamlInputError(ValueError):
    """YAML that cannot be read as the user meant it; the message names the source and the line."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let PyYAML say so
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f'key {key!r} appears twice (first on line {first}); keep one', key_node.start_mark
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Return the node count of ``root`` with every alias expanded, stopping early once past ``limit``."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int = 0) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > 200:
            raise YamlInputError(f'line {node.start_mark.line + 1}: nesting deeper than 200 levels')
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key, depth + 1) + size(value, depth + 1) for key, value in node.value)
        total = min(total, limit + 1)
        sizes[id(node)] = total
        return total

    return size(root)


def load_yaml(text: str, source: str = 'YAML') -> object:
    """Parse ``text`` safely: no Python tags, no repeated keys, no alias expansion beyond :data:`MAX_NODES`.

    :raises YamlInputError: ``source:line: problem``.
    """
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise YamlInputError(f'{source}: not valid YAML: {error}') from None
    if root is None:
        return None
    if _expanded_size(root, MAX_NODES) > MAX_NODES:
        raise YamlInputError(
            f'{source}: the document expands to more than {MAX_NODES:,} values through its aliases '
            '(&anchor/*alias); refusing it (write the settings out, or use fewer nested aliases).'
        )
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, 'problem_mark', None)
        where = f'{source}:{mark.line + 1}' if mark is not None else source
        problem = getattr(error, 'problem', None) or str(error)
        raise YamlInputError(f'{where}: {problem}') from None


def read_mapping(text: str, source: str, what: str, error: type[ValueError] = YamlInputError) -> tuple[yaml.Node, dict]:
    """Return (node tree, data) of a settings file whose top level must be a mapping of ``what``.

    The node tree gives the line of each key for error messages; the data is what ``yaml.safe_load`` reads (repeated
    keys are for the caller to report, among its other problems). One reader for the computer and study files.

    :raises error: ``source: not valid YAML: ...`` or ``source: expected a mapping of <what> at the top level.``
    """
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        raise error(f'{source}: not valid YAML: {problem}') from None
    if not isinstance(data, dict):
        raise error(f'{source}: expected a mapping of {what} at the top level.')
    return root, data
