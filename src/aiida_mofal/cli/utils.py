"""Small helpers shared by the ``mofal`` commands."""

import json

import click

#: where ``--json`` output goes when the root command has sent everything else to standard error
JSON_STREAM = None

JSON_OPTION = click.option('--json', 'as_json', is_flag=True, help='Print machine-readable JSON for scripts.')


def echo_json(data) -> None:
    """Print ``data`` as indented JSON on standard output."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str), file=JSON_STREAM)
