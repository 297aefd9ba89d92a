"""``mofal provenance NODE``: where a training configuration or a model came from, from the graph alone."""

from __future__ import annotations

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json


def _process(record: dict | None) -> str:
    if not record:
        return '-'
    called = f' as {record["called_as"]}' if record.get('called_as') else ''
    return f'{record["process"]}<{record["pk"]}>{called} (exit status {record["exit_status"]})'


def _print_configuration(result: dict) -> None:
    echo.echo(f'configuration {result["index"]} of data set {result["dataset"]}: {result["formula"]}, '
              f'{result["config_type"]}')  # fmt: skip
    label = result.get('label')
    if label:
        job_id = f', scheduler job {label["scheduler_job_id"]}' if label.get('scheduler_job_id') else ''
        echo.echo(f'  labelled by   {_process(label["cp2k_job"])} on {label["computer"]}{job_id}')
        if label.get('restart_chain'):
            echo.echo(f'                restarts: {_process(label["restart_chain"])}, {label["attempts"]} attempt(s)')
        else:  # a packed job (mofal.cp2k.packed): K structures, no restart chain of its own
            echo.echo(f'                packed: {label.get("structures_in_job")} structure(s) in that one job')
        echo.echo(f'                in {_process(label["labelling"])}; E = {label["energy_ev"]:.6f} eV, '
                  f'{label["level_of_theory"]}')  # fmt: skip
    flagged = result.get('flagged')
    if flagged:
        echo.echo(f'  cut from      frame {flagged["md_frame"]} of trajectory {flagged["trajectory"]} '
                  f'(target {flagged["target"]}, walk {flagged["walk"]}, cycle {flagged["cycle"]})')  # fmt: skip
        echo.echo(f'  MD            {_process(flagged["md_job"])} in {_process(flagged["md_workchain"])}; '
                  f'walk {flagged["walk_record"]}')  # fmt: skip
        threshold = flagged['threshold_uncertainty']
        limit = '-' if threshold is None else f'{threshold:.3f}'
        echo.echo(f'  flagged by    model {flagged["model"]} / density model {flagged["density_model"]} '
                  f'in {_process(flagged["scored_by"])}')  # fmt: skip
        echo.echo(f'  uncertainty   {flagged["uncertainty"]:.3f} (−log likelihood) of seed atom {flagged["seed_atom"]} '
                  f'({flagged["seed_element"]}); unknown above {limit}')  # fmt: skip
    initial = result.get('initial')
    if initial:
        echo.echo(f'  initial set   {initial["set"]} configuration of target {initial["target"]} '
                  f'(structure {initial["structure"]}, {initial["formula"]})')  # fmt: skip
    echo.echo(f'  campaign      {_process(result.get("campaign"))}')
    steps = ' <- '.join(f'{step["step"]}[{step["dataset"]}:{step["index"]}]' for step in result['steps'])
    echo.echo(f'  steps back    {steps}')


def _print_model(result: dict) -> None:
    echo.echo(f'model {result["model"]} ({_process(result.get("campaign"))}):')
    for entry in result['models']:
        metrics = entry.get('metrics') or {}
        key = next((key for key in entry if key.startswith('force_mae_p')), None)
        mae_text = (
            ''
            if key is None or entry[key] is None
            else f'; cycle {entry["cycle"]}: MAE_p95 {1000 * entry[key]:.1f} meV/Å'
        )
        valid = (metrics.get('valid') or {}).get('rmse_f_meV_per_A')
        mae_text += '' if valid is None else f', validation force RMSE {valid} meV/Å'
        echo.echo(f'  model {entry["model"]} <- {_process(entry.get("training_workchain"))}: '
                  f'{entry.get("training_configurations")} configurations (data set {entry.get("training_set")}), '
                  f'fine-tuned from {entry.get("parent_model") or "scratch"}{mae_text}')  # fmt: skip
    echo.echo('  training set history (oldest first):')
    for step in result['dataset_history']:
        if 'added' in step:
            echo.echo(f'    + {step["added"]} labelled by {_process(step["labelling"])} -> data set {step["dataset"]} '
                      f'({step["count"]})')  # fmt: skip
        elif 'initial' in step:
            echo.echo(f'    {step["set"]} part {step["initial"]} ({step["count"]}) of {step["split_from"]}')
        else:
            structure = f' from structure {step["target_structure"]}' if step.get('target_structure') else ''
            echo.echo(f'    data set {step["dataset"]} ({step["count"]}) by {_process(step["made_by"])}{structure}')


@cmd_root.command('provenance')
@click.argument('identifier', metavar='NODE')
@click.option('-i', '--index', type=int, default=None, help='Configuration index in a data set (or NODE as PK:INDEX).')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_provenance(identifier, index, as_json):
    """Where NODE came from: a data set configuration (PK:INDEX) or a MACE model (PK).

    A configuration: the CP2K job that labelled it, the cluster and MD frame it was cut from, the walk, model and
    density model that flagged it and the uncertainty. A model: every model it was fine-tuned from and how its
    training set grew from the initial data set.
    """
    from aiida import orm

    from aiida_mofal.campaign.provenance import ProvenanceError, model_lineage, trace_configuration
    from aiida_mofal.data import DatasetData, MaceModelData

    if ':' in identifier and index is None:
        identifier, _, text = identifier.rpartition(':')
        try:
            index = int(text)
        except ValueError:
            echo.echo_critical(f'{text!r} is not a configuration index; give NODE as PK:INDEX or --index N.')
    try:
        node = orm.load_node(identifier)
    except Exception as error:  # noqa: BLE001 -- not found or ambiguous: aiida's message says which
        echo.echo_critical(f'no node {identifier!r}: {error}')
    try:
        if isinstance(node, DatasetData):
            if index is None:
                echo.echo_critical(f'data set {node.pk} holds {node.count} configurations; say which: {node.pk}:INDEX')
            result, show = trace_configuration(node, index), _print_configuration
        elif isinstance(node, MaceModelData):
            result, show = model_lineage(node), _print_model
        else:
            kind = type(node).__name__
            echo.echo_critical(f'node {node.pk} is a {kind}; give a mofal.dataset (PK:INDEX) or a MACE model.')
    except ProvenanceError as error:
        echo.echo_critical(str(error))
    if as_json:
        echo_json(result)
    else:
        show(result)
