"""``mofal setup`` and ``mofal doctor``."""

import click
from aiida.cmdline.utils import echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json, echo_setup


@cmd_root.command('setup')
@click.option('--name', default='mofal', show_default=True, help='Name of the profile to create or reuse.')
@click.option(
    '--postgres',
    is_flag=True,
    help='Use PostgreSQL + RabbitMQ (127.0.0.1) instead of SQLite + the built-in broker.',
)
@click.option('--email', default='mofal@localhost', show_default=True, help='Email of the profile default user.')
@click.option('--mpiprocs', type=int, default=None, help='Default MPI processes on localhost [default: all cores].')
@JSON_OPTION
def cmd_setup(name, postgres, email, mpiprocs, as_json):
    """Create or reuse a profile, the localhost computer and the CP2K, LAMMPS and MACE codes.

    Safe to run again: what exists is reused. The profile lives under $AIIDA_PATH (the README commands set
    it to the project's .aiida folder, so your own profiles are never touched).
    """
    from aiida_mofal.environment.profile import setup

    try:
        summary = setup(name=name, postgres=postgres, email=email, mpiprocs=mpiprocs)
    except (RuntimeError, ConnectionError) as exception:
        echo.echo_critical(str(exception))
    echo_setup(summary, as_json, f'profile {summary["profile"]} ready in {summary["config_dir"]}')


@cmd_root.command('doctor')
@JSON_OPTION
@click.pass_context
def cmd_doctor(ctx, as_json):
    """Say what was found (profile, broker, daemon, codes, CP2K, LAMMPS, MACE, GPU) and how to fix the rest."""
    from aiida_mofal.environment.doctor import doctor

    profile = ctx.obj.profile if ctx.obj is not None and 'profile' in ctx.obj else None
    result = doctor(profile.name if profile else None)
    if as_json:
        echo_json(result)
    else:
        for name, check in result['checks'].items():
            mark = (
                click.style('ok ', fg='green')
                if check['ok']
                else click.style('-- ', fg='yellow' if not check['required'] else 'red')
            )
            click.echo(f'{mark} {name:<16} {_short(check["value"])}')
            if check['fix']:
                click.echo(f'    fix: {check["fix"]}')
    ctx.exit(0 if result['ok'] else 1)


def _short(value) -> str:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != 'packages'}
    text = str(value)
    return text if len(text) < 100 else text[:97] + '...'
