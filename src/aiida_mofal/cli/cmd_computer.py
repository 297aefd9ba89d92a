"""``mofal computer setup FILE.yaml``: one computer and its codes from a validated computer file."""

import click
from aiida.cmdline.utils import echo

from . import cmd_root
from .utils import JSON_OPTION, echo_setup


@cmd_root.group('computer')
def cmd_computer():
    """Remote (or local) machines that run the campaign's jobs."""


@cmd_computer.command('setup')
@click.argument('path', type=click.Path(dir_okay=False))
@JSON_OPTION
def cmd_computer_setup(path, as_json):
    """Create or reuse the computer of PATH and its codes (cp2k, lammps, python-mace) as <code>@<label>.

    The file is checked first (every problem with its line); then the computer is configured, connected to,
    and each code's executable is looked up on the remote. See examples/computers/ and docs/guide/remote.md.
    """
    from aiida_mofal.remote.config import ComputerFileError, load_computer_file
    from aiida_mofal.remote.setup import setup_computer

    try:
        config = load_computer_file(path).config
        summary = setup_computer(config)
    except (ComputerFileError, ValueError, OSError) as exception:
        echo.echo_critical(str(exception))
    echo_setup(summary, as_json, f'computer {summary["computer"]} ready; codes: {", ".join(summary["codes"].values())}')
