"""``mofal run``, ``mofal status`` and ``mofal report``: a campaign from its file to its figures.

``run`` only loads the file and hands it to the ``get_builder_from_protocol`` of its kind's work chain
(``ClusterCampaignWorkChain``, or ``TemperatureCampaignWorkChain`` for ``kind: temperature``), which checks
everything; ``status`` and ``report`` read the provenance graph (``aiida_mofal.campaign.queries``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import DAEMON_OPTION, JSON_OPTION, VERBOSE_OPTION, echo_json, launch, process_summary


def _table(node, rows) -> str:
    """Return the status table of campaign ``node``: per cycle (cluster) or per temperature step."""
    from aiida_mofal.analysis.report import status_table
    from aiida_mofal.analysis.temperature_report import temperature_status_table
    from aiida_mofal.campaign.queries import campaign_kind

    return temperature_status_table(rows) if campaign_kind(node) == 'temperature' else status_table(rows)


def _workchain(kind: str):
    if kind == 'temperature':
        from aiida_mofal.workchains.temperature import TemperatureCampaignWorkChain

        return TemperatureCampaignWorkChain
    from aiida_mofal.workchains.campaign import ClusterCampaignWorkChain

    return ClusterCampaignWorkChain


def _campaign(identifier: str):
    from aiida_mofal.campaign.queries import load_campaign_node

    try:
        return load_campaign_node(identifier)
    except ValueError as error:
        echo.echo_critical(str(error))


@cmd_root.command('run')
@click.argument('campaign_file', type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option('--report', 'report_dir', type=click.Path(file_okay=False, path_type=Path), help='Write the report here.')
@DAEMON_OPTION
@VERBOSE_OPTION
@JSON_OPTION
@decorators.with_dbenv()
def cmd_run(campaign_file, report_dir, daemon, verbose, as_json):
    """Run the active-learning campaign described by CAMPAIGN_FILE (YAML; see docs/guide/campaign.md).

    ``kind: temperature`` in the file runs a temperature campaign (docs/guide/temperature.md).

    The file is validated first (unknown keys, missing codes, unreadable or unlabelable targets are refused
    before anything is submitted). In the foreground: a progress bar per step and one line per cycle (--verbose:
    every process report line).
    """
    from aiida_mofal.campaign.config import load_campaign
    from aiida_mofal.campaign.queries import campaign_rows, end_message

    try:
        campaign = load_campaign(campaign_file)
        builder = _workchain(campaign.kind).get_builder_from_protocol(
            None, campaign.targets, protocol=campaign.protocol, overrides=campaign.overrides
        )
    except ValueError as error:  # also CampaignFileError and LabelInputError
        echo.echo_critical(str(error))
    if campaign.kind == 'temperature':  # step 0, one record per temperature, one for the random additions
        from aiida_mofal.campaign.temperature import temperatures

        settings = campaign.settings.model_dump()
        cycles = len(temperatures(settings)) + 1 + (settings['final']['random'] > 0)
    else:  # model 0, then one record per cycle
        cycles = campaign.settings.stop.max_cycles + 1
    results, node = launch(builder, daemon, as_json, progress=not verbose, cycles=cycles)
    if results is None:
        return
    if report_dir is not None:
        write_report(node, report_dir)
    if as_json:
        echo_json({**process_summary(node), 'campaign': node.pk})
    else:
        echo.echo(f'campaign {node.pk} finished with exit status {node.exit_status} {end_message(node) or ""}')
        echo.echo(_table(node, campaign_rows(node)))
        where = f'the report is in {report_dir}/index.md' if report_dir else f'`mofal report {node.pk} -o report`'
        echo.echo(f'`mofal status {node.pk}` for the table; {where}')
    if not node.is_finished_ok:
        sys.exit(1)


@cmd_root.command('status')
@click.argument('identifier', metavar='PK')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_status(identifier, as_json):
    """Per-cycle table of a campaign: frames scanned, unknown fraction, clusters, failures, errors, wall time.

    For a temperature campaign, per step: T, runs, frames seen, accepted, the energy, force and stress RMSEs,
    MAE_p95 and the training-set size.
    """
    from aiida_mofal.campaign.queries import campaign_kind, campaign_rows, end_message, test_set_summary

    node = _campaign(identifier)
    rows = campaign_rows(node)
    test_set = test_set_summary(node)
    state = node.process_state.value if node.process_state else 'unknown'
    if as_json:
        result = {'campaign': node.pk, 'state': state, 'exit_status': node.exit_status, 'cycles': rows}
        if test_set is not None:
            result['test_set'] = test_set
        if campaign_kind(node) == 'temperature':
            result.update(kind='temperature', exit_message=node.exit_message, stop_reason=end_message(node))
        echo_json(result)
        return
    message = f' ({end_message(node)})' if end_message(node) else ''
    echo.echo(f'campaign {node.pk} ({node.label}): {state}, exit status {node.exit_status}{message}')
    if test_set is not None:
        echo.echo(test_set)
    echo.echo(_table(node, rows))


@cmd_root.command('report')
@click.argument('identifier', metavar='PK')
@click.option('-o', '--output', type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option('--html', 'as_html', is_flag=True, help='Also write index.html and per-atom extxyz files.')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_report(identifier, output, as_html, as_json):
    """Write PNG plots and a summary page (index.md; with --html also index.html) of a campaign or a study.

    A study (`mofal study`) always gets index.html: its summary table, E(V) fits, glass figures and its campaign's page.

    With --html: per-element uncertainty histograms with their thresholds, the target coloured by the excess over
    the threshold, and the per-atom uncertainty and force error as extxyz (OVITO, chemiscope).
    """
    from aiida import orm

    from aiida_mofal.study.report import is_study, write_study_report

    try:
        node = orm.load_node(identifier)
    except Exception:  # noqa: BLE001 -- _campaign says why
        node = None
    if node is not None and is_study(node):
        result = write_study_report(node, output, lambda campaign, where: write_report(campaign, where, as_html=True))
        if as_json:
            echo_json(result)
        else:
            echo.echo_success(f'report of study {node.pk} in {result["html"]}')
        return
    result = write_report(_campaign(identifier), output, as_html=as_html)
    if as_json:
        echo_json(result)
    else:
        echo.echo_success(
            f'report of campaign {result["campaign"]} in {output} ({len(result["figures"])} figures, '
            f'summary {result["summary"]})'
        )


def write_report(node, output: Path, as_html: bool = False) -> dict:
    """Write the figures and ``index.md`` (and ``index.html``) of campaign ``node`` to ``output``."""
    from aiida_mofal.analysis.report import write_campaign_report
    from aiida_mofal.analysis.temperature_report import write_temperature_report
    from aiida_mofal.campaign.queries import (
        campaign_kind,
        campaign_rows,
        campaign_targets,
        end_message,
        last_evaluation_errors,
        test_set_summary,
    )

    rows = campaign_rows(node)
    process_state = node.process_state.value if node.process_state else 'unknown'
    state = f'{process_state}, exit status {node.exit_status} {end_message(node) or ""}'.strip()
    if campaign_kind(node) == 'temperature':
        title = f'Temperature campaign {node.pk}: {node.label}'
        errors = last_evaluation_errors(rows)
        result = write_temperature_report(output, title=title, state=state, rows=rows, errors=errors)
        return {'campaign': node.pk, **result, 'cycles': rows}
    outputs = node.outputs
    targets = campaign_targets(node)
    target = next(iter(sorted(targets.items())))[1].get_ase() if targets else None
    uncertainty = thresholds = None
    if target is not None and 'model' in outputs and 'density_model' in outputs:
        (score,) = outputs.density_model.score([target], outputs.model)
        uncertainty, thresholds = score['uncertainty'], outputs.density_model.thresholds
    errors = last_evaluation_errors(rows)
    test_structure = outputs.test_set.get_atoms()[0] if 'test_set' in outputs else None
    title = f'Campaign {node.pk}: {node.label}'
    state = f'{node.process_state.value}, exit status {node.exit_status}'
    result = write_campaign_report(
        output,
        title=title,
        state=state,
        rows=rows,
        errors=errors,
        target=target,
        target_uncertainty=uncertainty,
        first_test_structure=test_structure,
        density=outputs.density_model.base.attributes.all if 'density_model' in outputs else None,
        test_set=test_set_summary(node),
    )
    if as_html:
        from aiida_mofal.analysis.html_report import campaign_html_sections, write_html_report

        sections = campaign_html_sections(
            Path(output),
            rows,
            result['figures'],
            target=target,
            target_uncertainty=uncertainty,
            thresholds=thresholds,
            errors=errors,
            test_structure=test_structure,
        )
        result['html'] = str(write_html_report(output, title, state, sections))
    return {'campaign': node.pk, **result, 'cycles': rows}
