"""``mofal study FILE.yaml [--check] [--daemon] [--json]``: a paper's whole study as one WorkGraph."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import DAEMON_OPTION, JSON_OPTION, VERBOSE_OPTION, echo_json, ensure_daemon, process_summary


@cmd_root.command('study')
@click.argument('study_file', type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    '--check', is_flag=True, help='Validate the file, its campaign, codes, work chains and structures; submit nothing.'
)
@click.option(
    '--model', 'model_identifier', default=None, help='Use this MACE model (PK/UUID) instead of running the campaign.'
)
@DAEMON_OPTION
@VERBOSE_OPTION
@JSON_OPTION
@decorators.with_dbenv()
def cmd_study(study_file, check, model_identifier, daemon, verbose, as_json):
    """Run the study described by STUDY_FILE (YAML; see docs/guide/study.md) as one WorkGraph.

    Everything is checked first: the study file and its campaign file (unknown keys, values, with file and line),
    every code, the work chains the study needs (melt-quench, EOS, temperature campaign: by entry point), and every
    structure file. With --check nothing is submitted.
    """
    from aiida import orm

    from aiida_mofal.study.config import StudyFileError, load_study
    from aiida_mofal.workchains.study import build_study_graph, check_study

    try:
        study = load_study(study_file)
        plan = check_study(study)
    except (StudyFileError, ValueError) as error:
        echo.echo_critical(str(error))
    model = None
    if model_identifier is not None:
        try:
            model = orm.load_node(model_identifier)
        except Exception as error:  # noqa: BLE001 -- not found, ambiguous
            echo.echo_critical(f'--model {model_identifier}: {error}')
        plan['tasks'] = [name for name in plan['tasks'] if name != 'campaign']
    if check:
        if as_json:
            echo_json({**plan, 'valid': True})
        else:
            echo.echo_success(f'{study_file} is valid: tasks {" → ".join(plan["tasks"])}; nothing submitted')
            for name, entry_point in plan['slots'].items():
                echo.echo(f'  {name}: {entry_point} (installed)')
        return
    try:
        graph = build_study_graph(study, model=model)
    except ValueError as error:
        echo.echo_critical(str(error))
    if daemon:
        ensure_daemon()
        node = graph.submit()
        if as_json:
            echo_json({**process_summary(node), 'submitted': True, 'tasks': plan['tasks']})
        else:
            echo.echo_success(f'submitted study {node.pk}; follow it with `verdi process status {node.pk}`')
        return
    from .progress import quiet_progress

    stop = getattr(study.campaign.settings, 'stop', None)  # a temperature campaign has no cycle limit
    with quiet_progress(verbose=verbose, cycles=stop.max_cycles + 1 if stop and model is None else None):
        graph.run()
    node = graph.process
    if as_json:
        echo_json({**process_summary(node), 'tasks': plan['tasks']})
    else:
        echo.echo(f'study {node.pk} finished with exit status {node.exit_status} {node.exit_message or ""}')
        echo.echo(
            f'`mofal report {node.pk} --html -o report` for the figures; `verdi process status {node.pk}` for the tree'
        )
    if not node.is_finished_ok:
        sys.exit(1)
