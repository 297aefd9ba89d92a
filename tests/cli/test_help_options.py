"""`--help` of every `mofal` command (and of the `verdi data mofal.*` groups) works, and no command declares an
option name twice (click accepts a duplicated ``--trust-model-file`` silently; the second one shadows the first)."""

from collections import Counter

import click
import pytest
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root, verdi_data


def _commands(group: click.Command, path: tuple[str, ...] = ()):
    """Yield ``(path, command)`` for ``group`` and every command below it."""
    yield path, group
    if isinstance(group, click.Group):
        for name, command in sorted(group.commands.items()):
            yield from _commands(command, (*path, name))


def _id(value) -> str:
    return ' '.join(('mofal', *value) if value[:1] != ('verdi',) else value) if isinstance(value, tuple) else ''


MOFAL = list(_commands(cmd_root))
VERDI_DATA = [
    (('verdi', 'data', f'mofal.{name}', *path), command)
    for name in ('dataset', 'mace_model', 'trajectory')
    for path, command in _commands(getattr(verdi_data, name))
]


def test_every_command_is_found():
    """The walk reaches the commands (a walk that finds nothing would pass the tests below)."""
    names = {' '.join(path) for path, _ in MOFAL}
    assert {'study', 'eos run', 'melt-quench', 'md', 'report', 'provenance', 'rerun'} <= names, sorted(names)
    assert len(VERDI_DATA) >= 6


@pytest.mark.parametrize(('path', 'command'), MOFAL + VERDI_DATA, ids=_id)
def test_option_names_are_unique(path, command):
    """No option string (``--x``, ``-x``, ``--no-x``) belongs to two parameters of one command."""
    names = Counter(name for param in command.params for name in (*param.opts, *param.secondary_opts))
    duplicated = sorted(name for name, count in names.items() if count > 1)
    assert not duplicated, f'{" ".join(path)}: {duplicated} declared more than once'


@pytest.mark.parametrize('path', [path for path, _ in MOFAL], ids=_id)
def test_help_exits_zero(path):
    """``mofal ... --help`` prints the usage and exits 0 (no profile is needed for help)."""
    result = CliRunner().invoke(cmd_root, [*path, '--help'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert 'Usage:' in result.output


@pytest.mark.parametrize(('path', 'command'), VERDI_DATA, ids=_id)
def test_verdi_data_help_exits_zero(path, command):  # noqa: ARG001 -- path names the case
    """``verdi data mofal.X ... --help`` exits 0."""
    result = CliRunner().invoke(command, ['--help'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
