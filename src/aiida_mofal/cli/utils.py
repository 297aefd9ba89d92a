"""What every ``mofal`` command shares: ``--json`` (standard output for the JSON only), ``--daemon`` and launching.

Commands stay thin, as in mace-torch's ``main → run``: parse the options, build the inputs with the library
(``get_builder_from_protocol``), hand the builder to :func:`launch`, print the result.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

__all__ = (
    'DAEMON_OPTION',
    'JSON_OPTION',
    'PYTHON_CODE_OPTION',
    'TRUST_MODEL_OPTION',
    'VERBOSE_OPTION',
    'WALLTIME_OPTION',
    'echo_json',
    'echo_setup',
    'ensure_daemon',
    'launch',
    'load_code',
    'parse_overrides',
    'process_summary',
)

#: ``--trust-model-file`` of every command that takes ``--model`` (a file is read weights-only without it)
TRUST_MODEL_OPTION = click.option(
    '--trust-model-file',
    is_flag=True,
    help='The --model file is a MACE .model pickle you made or trust: load it (this runs code it holds) and store '
    'it as weights. Without this flag only weights-only files are read (docs/guide/security.md).',
)


#: where ``--json`` output goes once :func:`_json_mode` has sent everything else to standard error
JSON_STREAM = None


def _json_mode(ctx: click.Context, _param, value: bool) -> bool:
    """With ``--json``, standard output carries only the JSON: everything else printed goes to standard error.

    Runs while the options are parsed, so before the command imports anything: engines print notices when
    imported (MACE: cuequivariance), and AiiDA's process reports are echoed to standard output.
    """
    global JSON_STREAM
    if value:
        JSON_STREAM = sys.stdout
        sys.stdout = sys.stderr
        ctx.call_on_close(_restore_stdout)
    return value


def _restore_stdout() -> None:
    global JSON_STREAM
    if JSON_STREAM is not None:
        sys.stdout, JSON_STREAM = JSON_STREAM, None


JSON_OPTION = click.option(
    '--json',
    'as_json',
    is_flag=True,
    is_eager=True,
    callback=_json_mode,
    help='Print machine-readable JSON for scripts (only the JSON goes to standard output).',
)

#: the Python+MACE code that runs a command's MACE jobs (MD, melt-quench, equations of state)
PYTHON_CODE_OPTION = click.option(
    '--code', 'code_label', default='python-mace@localhost', show_default=True, help='Code to run with.'
)
#: the walltime of each job that a command submits
WALLTIME_OPTION = click.option('--walltime', type=click.IntRange(min=60), help='Walltime of each job in seconds.')

DAEMON_OPTION = click.option(
    '--daemon', is_flag=True, help='Submit to the daemon (started if it is not running) and return at once.'
)


VERBOSE_OPTION = click.option(
    '--verbose', is_flag=True, help='Print every process report line instead of progress bars and cycle summaries.'
)


def echo_json(data) -> None:
    """Print ``data`` as indented JSON on standard output (the real one, also under ``--json``)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str), file=JSON_STREAM)


def echo_setup(summary: dict, as_json: bool, success: str) -> None:
    """Print what a setup command did: the summary as JSON, or its report lines and ``success``."""
    from aiida.cmdline.utils import echo

    if as_json:
        echo_json(summary)
        return
    for line in summary['report']:
        echo.echo_report(line)
    echo.echo_success(success)


def ensure_daemon() -> None:
    """Start the profile's daemon (one worker) with this environment's ``verdi`` unless it is running.

    The daemon runs ``verdi``, which AiiDA looks up on ``PATH`` when it is imported; from a virtual environment
    that is not activated that would be another installation's, or none: use the one beside this interpreter.
    """
    from aiida.cmdline.utils import echo
    from aiida.engine.daemon import client as daemon_client

    here = Path(sys.executable).parent
    os.environ['PATH'] = f'{here}{os.pathsep}{os.environ.get("PATH", "")}'
    if daemon_client.VERDI_BIN is None and (here / 'verdi').is_file():
        daemon_client.VERDI_BIN = str(here / 'verdi')
    client = daemon_client.get_daemon_client()
    if client.is_daemon_running:
        return
    if daemon_client.VERDI_BIN is None:
        echo.echo_critical(
            f'the daemon is not running and no `verdi` is beside {sys.executable}; start it with '
            '`verdi daemon start` from this environment, then submit again.'
        )
    client.start_daemon(number_workers=1)
    _wait_for_broker()
    echo.echo_report('started the daemon (1 worker); stop it with `verdi daemon stop`', err=True)


def _wait_for_broker(seconds: float = 120.0) -> None:
    """Wait until the broker that the daemon started accepts a submission.

    AiiDA itself waits 10 s, too short on a loaded machine: the ZeroMQ broker of a fresh profile starts with the
    daemon, and a submission before it is ready fails.
    """
    import time

    from aiida.cmdline.utils import echo
    from aiida.manage import get_manager

    deadline = time.monotonic() + seconds
    while True:
        try:
            get_manager().get_communicator()
            return
        except ConnectionError as exception:
            if time.monotonic() > deadline:
                echo.echo_critical(
                    f'the daemon started but its broker did not answer within {seconds:.0f} s ({exception}); nothing '
                    'was submitted. See `verdi daemon logshow`, then `verdi daemon restart` and submit again (a very '
                    'busy machine can take this long; `mofal doctor` checks the broker).'
                )


def load_code(label: str, option: str = '--code'):
    """Load the code ``label`` or stop with how to get one (``mofal setup``, or another ``option``)."""
    from aiida import orm
    from aiida.cmdline.utils import echo

    try:
        return orm.load_code(label)
    except Exception as exception:  # noqa: BLE001 -- not existing, ambiguous, ...: say how to get one
        echo.echo_critical(
            f'cannot load code {label!r} ({exception}); run `mofal setup` (localhost) or pass {option} LABEL@COMPUTER '
            '(`verdi code list` shows the codes of this profile).'
        )


def parse_overrides(pairs: tuple[str, ...]) -> dict:
    """Turn ``('hyperparameters.lr=0.005', ...)`` into a nested dict; values are read as YAML (numbers, bools).

    Values go through :func:`~aiida_mofal.safe_yaml.load_yaml`: a tag (``!!python/...``), a repeated key or an
    alias bomb is a :class:`click.BadParameter`, never a traceback.
    """
    from aiida_mofal.safe_yaml import YamlInputError, load_yaml

    overrides: dict = {}
    for pair in pairs:
        key, sep, text = pair.partition('=')
        if not sep or not key:
            raise click.BadParameter(f'{pair!r} is not KEY=VALUE (e.g. hyperparameters.max_num_epochs=50).')
        *parents, leaf = key.split('.')
        target = overrides
        for parent in parents:
            target = target.setdefault(parent, {})
        try:
            target[leaf] = load_yaml(text, f'--override {key}')
        except YamlInputError as error:
            raise click.BadParameter(str(error)) from None
    return overrides


def process_summary(node) -> dict:
    """Return what every launching command prints about its process: PK, UUID, class, state and exit."""
    return {
        'pk': node.pk,
        'uuid': node.uuid,
        'process': node.process_label,
        'state': node.process_state.value if node.process_state else None,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
    }


def launch(builder, daemon: bool, as_json: bool, progress: bool = False, cycles: int | None = None):
    """Run ``builder`` in the foreground, or submit it to the daemon and report the submission.

    With ``progress`` the foreground run shows a bar per step and one line per cycle instead of every report line
    (:mod:`aiida_mofal.cli.progress`; ``cycles`` is the bar's total).

    :returns: ``(results, node)``: the outputs and the process node in the foreground; with ``daemon``,
        ``(None, node)`` once the submission is printed (the command then has nothing more to do).
    """
    from aiida import engine
    from aiida.cmdline.utils import echo

    if not daemon:  # Ctrl-C kills the process cleanly, ends the local engines and says how to go on
        from .foreground import run_foreground

        if not progress:
            return run_foreground(builder)
        from .progress import quiet_progress

        with quiet_progress(cycles=cycles):
            return run_foreground(builder)
    ensure_daemon()
    node = engine.submit(builder)
    if as_json:
        echo_json({**process_summary(node), 'submitted': True})
    else:
        echo.echo_success(f'submitted {node.process_label}<{node.pk}>; follow it with `verdi process status {node.pk}`')
    return None, node
