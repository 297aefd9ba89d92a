"""``mofal rerun PK [--computer LABEL] [--check] [--daemon] [--json]``: a finished campaign or study, run again."""

from __future__ import annotations

import sys

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import DAEMON_OPTION, JSON_OPTION, VERBOSE_OPTION, echo_json, ensure_daemon, launch, process_summary


@cmd_root.command('rerun')
@click.argument('identifier', metavar='PK')
@click.option('--computer', default=None, help='Run on this computer (the codes of the same labels there).')
@click.option('--check', is_flag=True, help='Build the re-run and say what it would run where; submit nothing.')
@DAEMON_OPTION
@VERBOSE_OPTION
@JSON_OPTION
@decorators.with_dbenv()
def cmd_rerun(identifier, computer, check, daemon, verbose, as_json):
    """Run the campaign or study PK again from the inputs its graph stored (also after `verdi archive import`).

    Nothing is read from files: the settings, structures, models and codes are the stored input nodes. With
    --computer every code moves to the code of the same label on that computer and a campaign's step options are
    written again for its scheduler (as `mofal run` would); a code it lacks is refused before anything is stored.
    """
    from aiida import orm

    from aiida_mofal.study.report import is_study
    from aiida_mofal.workchains.rerun import CAMPAIGN_LABELS, campaign_rerun_builder, study_rerun_graph

    try:
        node = orm.load_node(identifier)
    except Exception as error:  # noqa: BLE001 -- not found, ambiguous
        echo.echo_critical(f'{identifier}: {error}')
    study = is_study(node)
    if not study and not (isinstance(node, orm.ProcessNode) and node.process_label in CAMPAIGN_LABELS):
        echo.echo_critical(f'{identifier} is a {type(node).__name__}, not a campaign or a study (`mofal study`)')
    try:
        launchable = study_rerun_graph(node, computer) if study else campaign_rerun_builder(node, computer)
    except ValueError as error:
        echo.echo_critical(str(error))
    codes = sorted({code.full_label for code in _codes(launchable, study)})
    if check:
        plan = {'rerun_of': node.pk, 'kind': 'study' if study else 'campaign', 'codes': codes, 'valid': True}
        if as_json:
            echo_json(plan)
        else:
            echo.echo_success(f'{node.process_label}<{node.pk}> can run again on {", ".join(codes)}; nothing submitted')
        return
    if study:
        node_new = _run_graph(launchable, daemon, verbose)
    else:
        results, node_new = launch(launchable, daemon, as_json, progress=not verbose)
        if results is None:
            return
    if node_new is None:
        return
    summary = {**process_summary(node_new), 'rerun_of': node.pk, 'codes': codes}
    if as_json:
        echo_json(summary)
    else:
        echo.echo(f'rerun {node_new.pk} of {node.pk} finished with exit status {node_new.exit_status}')
        echo.echo(f'`mofal report {node_new.pk} -o report` for its report')
    if not node_new.is_finished_ok:
        sys.exit(1)


def _codes(launchable, study: bool):
    """Return the codes a re-run will use (the campaign's code inputs; every code input of a study's tasks)."""
    from aiida import orm

    def walk(value):
        if isinstance(value, orm.AbstractCode):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from walk(item)

    if study:
        return [code for task in launchable.tasks for code in walk(task.inputs._value)]
    return [launchable[key] for key in launchable if key.endswith('_code')]


def _run_graph(graph, daemon: bool, verbose: bool):
    """Run a study's graph in the foreground (progress bars) or submit it; return its node (None once submitted)."""
    if daemon:
        ensure_daemon()
        node = graph.submit()
        echo.echo_success(f'submitted study {node.pk}; follow it with `verdi process status {node.pk}`')
        return None
    from .progress import quiet_progress

    with quiet_progress(verbose=verbose):
        graph.run()
    return graph.process
