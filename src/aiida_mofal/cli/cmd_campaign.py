"""``mofal run``, ``mofal status`` and ``mofal report``: a campaign from its file to its figures.

``status`` and ``report`` read everything from the provenance graph with the QueryBuilder, so they work the
same on a live profile and on an archive imported into a fresh one.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .cmd_label import read_frames
from .utils import JSON_OPTION, echo_json


def check_campaign(config, base: Path) -> dict:
    """Check what the campaign needs before anything is submitted: codes exist, targets read and can be labelled.

    Returns the loaded codes and target structures (ASE) by name; raises ``click.ClickException`` naming the
    problem and its fix.
    """
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    from aiida_mofal.cp2k.inputs import LabelInputError, check_labelling_input
    from aiida_mofal.workchains.label import label_settings

    codes = {}
    for step in ('cp2k', 'train', 'md'):
        label = getattr(config.resources, step).code
        try:
            codes[step] = orm.load_code(label)
        except (NotExistent, MultipleObjectsError, ValueError):
            raise click.ClickException(
                f'resources.{step}.code: no code {label!r} in this profile; run `mofal setup` (localhost) '
                'or `verdi code list` and name an existing one.'
            ) from None
    try:
        settings = label_settings(config.label.protocol, config.label.overrides)
    except ValueError as error:
        raise click.ClickException(f'label: {error}') from None
    from aiida_mofal.md.protocol import load_md_settings
    from aiida_mofal.protocols import load_protocol
    from aiida_mofal.uncertainty.gmm import DensityModel

    checks = {
        'train': lambda: load_protocol('mace', config.train.protocol, config.train.overrides),
        'explore': lambda: load_md_settings(config.explore.protocol, config.explore.overrides),
        'density.settings': lambda: DensityModel.validate_settings(config.density.settings),
    }
    for section, check in checks.items():
        try:
            check()
        except ValueError as error:
            raise click.ClickException(f'{section}: {error}') from None
    targets = {}
    for target in config.targets:
        path = base / target.structure
        try:
            (atoms, *more) = read_frames([path], cluster=False, charge=0, multiplicity=1)
        except click.ClickException as error:
            raise click.ClickException(f'targets[{target.name}]: {error.message}') from None
        if more:
            raise click.ClickException(f'targets[{target.name}]: {path} holds {1 + len(more)} frames; give one.')
        try:
            check_labelling_input(atoms, settings, f'target {target.name!r}')
        except LabelInputError as error:
            raise click.ClickException(str(error)) from None
        targets[target.name] = atoms
    return {'codes': codes, 'targets': targets}


@cmd_root.command('run')
@click.argument('campaign_file', type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option('--daemon', is_flag=True, help='Submit to the daemon (started if needed) and return at once.')
@click.option('--report', 'report_dir', type=click.Path(file_okay=False, path_type=Path), help='Write the report here.')
@JSON_OPTION
@decorators.with_dbenv()
@click.pass_context
def cmd_run(ctx, campaign_file, daemon, report_dir, as_json):
    """Run the active-learning campaign described by CAMPAIGN_FILE (YAML; see docs/guide/campaign.md).

    The file is validated first (unknown keys, missing codes, unreadable or unlabelable targets are refused
    before anything is submitted). In the foreground, progress is printed per step.
    """
    from aiida import engine, orm

    from aiida_mofal.analysis.report import status_table
    from aiida_mofal.campaign.config import CampaignFileError, load_campaign
    from aiida_mofal.workchains.campaign import ClusterCampaignWorkChain

    try:
        config, base = load_campaign(campaign_file)
    except CampaignFileError as error:
        echo.echo_critical(str(error))
    checked = check_campaign(config, base)
    builder = ClusterCampaignWorkChain.get_builder()
    builder.config = orm.Dict(config.model_dump(mode='json'))
    builder.targets = {name: orm.StructureData(ase=atoms) for name, atoms in checked['targets'].items()}
    builder.cp2k_code = checked['codes']['cp2k']
    builder.train_code = checked['codes']['train']
    builder.md_code = checked['codes']['md']
    builder.metadata.label = config.name
    if daemon:
        import os

        from aiida.engine.daemon import client as daemon_client

        # the daemon is started through `verdi`, looked up on PATH when aiida is imported: use this environment's
        here = Path(sys.executable).parent
        os.environ['PATH'] = f'{here}{os.pathsep}{os.environ.get("PATH", "")}'
        if daemon_client.VERDI_BIN is None and (here / 'verdi').is_file():
            daemon_client.VERDI_BIN = str(here / 'verdi')
        client = daemon_client.get_daemon_client()
        if not client.is_daemon_running:
            client.start_daemon(number_workers=1)
            echo.echo_report('started the daemon (1 worker); stop it with `verdi daemon stop`', err=True)
        node = engine.submit(builder)
        if as_json:
            echo_json({'campaign': node.pk, 'submitted': True})
        else:
            echo.echo_success(f'submitted campaign {node.pk}; follow it with `mofal status {node.pk}`')
        return
    quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with quiet:
        _, node = engine.run_get_node(builder)
    if report_dir is not None:
        with quiet:
            ctx.invoke(cmd_report, identifier=str(node.pk), output=report_dir, as_json=False)
    if as_json:
        echo_json({'campaign': node.pk, 'exit_status': node.exit_status, 'exit_message': node.exit_message})
    else:
        echo.echo(f'campaign {node.pk} finished with exit status {node.exit_status} {node.exit_message or ""}')
        echo.echo(status_table(campaign_rows(node)))
        where = f'the report is in {report_dir}/index.md' if report_dir else f'`mofal report {node.pk} -o report`'
        echo.echo(f'`mofal status {node.pk}` for the table; {where}')
    if not node.is_finished_ok:
        sys.exit(1)


def campaign_rows(campaign) -> list[dict]:
    """Per-cycle rows of a campaign, from its ``cycles`` outputs and the processes it called (QueryBuilder only)."""
    from aiida import orm

    records = (
        orm.QueryBuilder()
        .append(orm.WorkflowNode, filters={'id': campaign.pk}, tag='campaign')
        .append(
            orm.Dict,
            with_incoming='campaign',
            edge_filters={'label': {'like': 'cycles__cycle_%'}},
            project=['attributes'],
        )
        .all(flat=True)
    )
    called = (
        orm.QueryBuilder()
        .append(orm.WorkflowNode, filters={'id': campaign.pk}, tag='campaign')
        .append(orm.ProcessNode, with_incoming='campaign', edge_project=['label'], project=['*'])
        .all()
    )
    by_cycle: dict[int, list] = {}
    for node, label in called:
        cycle = 0 if label == 'initial_label' else int(label.split('_')[1]) if label.startswith('cycle_') else None
        if cycle is not None:
            by_cycle.setdefault(cycle, []).append((label, node))
    rows = []
    for record in sorted(records, key=lambda r: r['cycle']):
        row = dict(record)
        cycle = row['cycle']
        processes = by_cycle.get(cycle, [])
        if processes:
            start = min(node.ctime for _, node in processes)
            end = max(node.mtime for _, node in processes)
            row['wall_seconds'] = (end - start).total_seconds()
        failures = 0
        for label, node in processes:
            if '_explore_' in label and not node.is_finished_ok:
                failures += 1
            if label.endswith('_label') and label != 'initial_label':
                if 'failed' in node.outputs:
                    failures += len(node.outputs.failed.get_dict())
                if 'dataset' in node.outputs:
                    row['clusters_labelled'] = node.outputs.dataset.count
        row['failures'] = failures
        for key in ('force_mae_pk', 'force_rmse'):
            value = row.get(f'{key}_ev_per_a')
            row[f'{key}_mev_per_a'] = None if value is None else 1000 * value
        value = row.get('delta_e_std_ev_per_atom')
        row['delta_e_std_mev_per_atom'] = None if value is None else 1000 * value
        rows.append(row)
    return rows


def _load_campaign(identifier: str):
    from aiida import orm

    try:
        node = orm.load_node(identifier)
    except Exception as error:
        echo.echo_critical(f'no node {identifier!r}: {error}')
    if node.process_label != 'ClusterCampaignWorkChain':
        echo.echo_critical(f'node {node.pk} is a {node.process_label or type(node).__name__}, not a campaign.')
    return node


@cmd_root.command('status')
@click.argument('identifier', metavar='PK')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_status(identifier, as_json):
    """Per-cycle table of a campaign: frames scanned, unknown fraction, clusters, failures, errors, wall time."""
    from aiida_mofal.analysis.report import status_table

    node = _load_campaign(identifier)
    rows = campaign_rows(node)
    state = node.process_state.value if node.process_state else 'unknown'
    if as_json:
        echo_json({'campaign': node.pk, 'state': state, 'exit_status': node.exit_status, 'cycles': rows})
        return
    echo.echo(f'campaign {node.pk} ({node.label}): {state}, exit status {node.exit_status}')
    echo.echo(status_table(rows))


@cmd_root.command('report')
@click.argument('identifier', metavar='PK')
@click.option('-o', '--output', type=click.Path(file_okay=False, path_type=Path), required=True)
@JSON_OPTION
@decorators.with_dbenv()
def cmd_report(identifier, output, as_json):
    """Write PNG plots and a summary page (index.md) of a campaign to a directory."""
    # with --json, standard output carries only the JSON (MACE prints notices on import)
    quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with quiet:
        result = _write_report(identifier, output)
    if as_json:
        echo_json(result)
    else:
        echo.echo_success(
            f'report of campaign {result["campaign"]} in {output} ({len(result["figures"])} figures, '
            f'summary {result["summary"]})'
        )


def _write_report(identifier: str, output: Path) -> dict:
    import numpy as np
    from aiida import orm

    from aiida_mofal.analysis import report

    node = _load_campaign(identifier)
    rows = campaign_rows(node)
    output.mkdir(parents=True, exist_ok=True)
    figures = {
        'learning_curve': report.plot_learning_curve(rows, output / 'learning_curve.png'),
        'unknown_fraction': report.plot_unknown_fraction(rows, output / 'unknown_fraction.png'),
    }
    evaluations = (
        orm.QueryBuilder()
        .append(orm.WorkflowNode, filters={'id': node.pk}, tag='campaign')
        .append(
            orm.CalcFunctionNode,
            with_incoming='campaign',
            filters={'attributes.process_label': 'evaluate_model'},
            tag='ev',
        )
        .append(orm.ArrayData, with_incoming='ev', edge_filters={'label': 'errors'}, project=['*'])
        .order_by({orm.CalcFunctionNode: {'ctime': 'desc'}})
        .all(flat=True)
    )
    errors = None
    if evaluations:
        errors = {name: evaluations[0].get_array(name) for name in evaluations[0].get_arraynames()}
        figures['parity'] = report.plot_parity(errors, output / 'parity.png', title='Test set, last model')
    outputs = node.outputs
    if 'model' in outputs and 'density_model' in outputs:
        targets = (
            orm.QueryBuilder()
            .append(orm.StructureData, edge_filters={'label': {'like': 'targets__%'}}, tag='t', project=['*'])
            .append(orm.WorkflowNode, filters={'id': node.pk}, with_incoming='t')
            .all(flat=True)
        )
        if targets:
            atoms = targets[0].get_ase()
            (score,) = outputs.density_model.score([atoms], outputs.model)
            figures['uncertainty'] = report.plot_structure_values(
                atoms, score['uncertainty'], output / 'target_uncertainty.png', '−log likelihood', 'Target: uncertainty'
            )
    if errors is not None and 'test_set' in outputs:
        first = outputs.test_set.get_atoms()[0]
        mask = errors['structure_index'] == 0
        per_atom = np.linalg.norm(errors['forces_pred'][mask] - errors['forces_ref'][mask], axis=1)
        figures['error'] = report.plot_structure_values(
            first, 1000 * per_atom, output / 'test_force_error.png', '|ΔF| (meV/Å)', 'Test structure: force error'
        )
    summary = output / 'index.md'
    lines = [
        f'# Campaign {node.pk}: {node.label}',
        '',
        f'State: {node.process_state.value}, exit status {node.exit_status}',
        '',
    ]
    lines += ['```', report.status_table(rows), '```', '']
    lines += [f'![{name}]({path.name})' for name, path in figures.items()]
    summary.write_text('\n'.join(lines) + '\n')
    result = {
        'campaign': node.pk,
        'summary': str(summary),
        'figures': {k: str(v) for k, v in figures.items()},
        'cycles': rows,
    }
    return result
