"""``verdi data mofal.dataset | mofal.mace_model | mofal.trajectory``: list, show and export, as for core types.

Registered as ``aiida.cmdline.data`` entry points, so ``verdi data`` finds them the way it finds
``core.structure``; listing reuses aiida-core's own query (``cmd_data.cmd_list``: the same ``--groups``,
``--past-days``, ``--all-users`` and ``--raw`` options). The columns are stored attributes, so a listing never
opens a node's repository. ``export`` writes the node's own file format (extxyz for configurations and frames,
the ``.model`` file for a MACE model); text formats print to standard output without ``-o``, as in aiida-core.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from aiida.cmdline.commands.cmd_data.cmd_list import list_options, query
from aiida.cmdline.params import arguments, options, types
from aiida.cmdline.utils import decorators, echo

__all__ = ('dataset', 'mace_model', 'trajectory')


def _format(value) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.6g}'
    if isinstance(value, list | tuple):
        return ','.join(str(item) for item in value)
    if isinstance(value, dict):
        return ','.join(f'{key}:{_format(item)}' for key, item in value.items())
    return str(value)


def _list(entry_point: str, columns: Sequence[tuple[str, str]], past_days, groups, all_users, raw) -> None:
    """Print one row per node of ``entry_point``: ``columns`` are (header, projection) pairs, oldest first."""
    from aiida.plugins import DataFactory
    from tabulate import tabulate

    group_pks = [group.pk for group in groups] if groups else None
    project = [projection for _, projection in columns]
    rows = [
        [_format(value) for value in row]
        for row in query(DataFactory(entry_point), project, past_days, group_pks, all_users)
    ]
    if raw:
        echo.echo(tabulate(rows, tablefmt='plain'))
        return
    echo.echo(tabulate(rows, headers=[header for header, _ in columns]))
    echo.echo(f'\nTotal results: {len(rows)}\n')


def _show(summary: dict, as_json: bool) -> None:
    if as_json:
        echo.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
        return
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        echo.echo(f'{key:<{width}}  {json.dumps(value, default=str) if isinstance(value, dict | list) else value}')


def _export_text(text: str, output: str | None, force: bool, what: str) -> None:
    """Print ``text`` (no ``-o``) or write it to ``output``, refusing to overwrite without ``--force``."""
    if not output:
        echo.echo(text, nl=False)
        return
    path = Path(output)
    if path.exists() and not force:
        echo.echo_critical(f'{path} exists; use --force to overwrite it.')
    path.write_text(text)
    echo.echo_success(f'wrote {what} to {path}')


def _node_summary(node, keys: Sequence[str]) -> dict:
    attributes = node.base.attributes
    return {'pk': node.pk, 'uuid': node.uuid, 'label': node.label, 'ctime': str(node.ctime)} | {
        key: attributes.get(key) for key in keys
    }


SHOW_JSON = click.option('--json', 'as_json', is_flag=True, help='Print the summary as JSON.')
OUTPUT = click.option('-o', '--output', type=click.STRING, default=None, help='Write to this file (else print).')


def _datum(entry_point: str) -> Callable:
    return arguments.DATUM(type=types.DataParamType(sub_classes=(f'aiida.data:{entry_point}',)))


def _data_group(
    entry_point: str,
    help_text: str,
    list_help: str,
    columns: Sequence[tuple[str, str]],
    show_help: str,
    keys: Sequence[str],
) -> click.Group:
    """Return the ``verdi data <entry_point>`` group with its ``list`` (``columns``) and ``show`` (``keys``) commands.

    Every data type lists and shows the same way; only its columns and attributes differ. ``export`` writes each
    type's own file format, so each group adds it itself.
    """
    group = click.Group(entry_point, help=help_text)

    @group.command('list', help=list_help)
    @list_options
    @decorators.with_dbenv()
    def list_command(past_days, groups, all_users, raw):
        _list(entry_point, columns, past_days, groups, all_users, raw)

    @group.command('show', help=show_help)
    @_datum(entry_point)
    @SHOW_JSON
    @decorators.with_dbenv()
    def show_command(datum, as_json):
        _show(_node_summary(datum, keys), as_json)

    return group


# -- mofal.dataset ------------------------------------------------------------------------------------------

DATASET_KEYS = (
    'count',
    'num_atoms',
    'elements',
    'labels',
    'config_types',
    'level_of_theory',
    'isolated_atom_energies',
    'sha256',
)


dataset = _data_group(
    'mofal.dataset',
    'Labelled configurations (`mofal.dataset`): list, show, export as extxyz.',
    'List data sets: configurations, atoms, elements, labels, kinds, level of theory.',
    (
        ('Id', 'id'),
        ('Label', 'label'),
        ('Configs', 'attributes.count'),
        ('Atoms', 'attributes.num_atoms'),
        ('Elements', 'attributes.elements'),
        ('Labels', 'attributes.labels'),
        ('Kinds', 'attributes.config_types'),
        ('Method', 'attributes.level_of_theory.method'),
    ),
    'Show what a data set holds (its stored attributes).',
    DATASET_KEYS,
)


@dataset.command('export')
@_datum('mofal.dataset')
@options.EXPORT_FORMAT(type=click.Choice(['extxyz']), default='extxyz')
@OUTPUT
@options.FORCE(help='Overwrite the output file.')
@decorators.with_dbenv()
def dataset_export(datum, fmt, output, force):
    """Export a data set as extxyz with MACE's REF_* keys (ready for mace_run_train)."""
    _export_text(datum.get_text(), output, force, f'{datum.count} configurations')


# -- mofal.mace_model ---------------------------------------------------------------------------------------

MODEL_KEYS = (
    'elements',
    'r_max',
    'num_interactions',
    'num_channels',
    'dtype',
    'model_class',
    'hyperparameters',
    'sha256',
)


mace_model = _data_group(
    'mofal.mace_model',
    'Trained MACE models (`mofal.mace_model`): list, show, export the model file.',
    'List MACE models: elements, cut-off, layers, channels, dtype.',
    (
        ('Id', 'id'),
        ('Label', 'label'),
        ('Elements', 'attributes.elements'),
        ('r_max', 'attributes.r_max'),
        ('Layers', 'attributes.num_interactions'),
        ('Channels', 'attributes.num_channels'),
        ('Dtype', 'attributes.dtype'),
    ),
    "Show a model's elements, cut-off, architecture, hyperparameters and file checksum.",
    MODEL_KEYS,
)


@mace_model.command('export')
@_datum('mofal.mace_model')
@options.EXPORT_FORMAT(type=click.Choice(['model']), default='model')
@click.option('-o', '--output', type=click.STRING, required=True, help='The model file to write (binary).')
@options.FORCE(help='Overwrite the output file.')
@decorators.with_dbenv()
def mace_model_export(datum, fmt, output, force):
    """Write the MACE model file (as `MaceModelData.write` does: a model MACE itself loads)."""
    path = Path(output)
    if path.exists() and not force:
        echo.echo_critical(f'{path} exists; use --force to overwrite it.')
    datum.write(path)
    echo.echo_success(f'wrote MACE model {datum.pk} to {path}')


# -- mofal.trajectory ---------------------------------------------------------------------------------------

TRAJECTORY_KEYS = (
    'num_frames',
    'num_atoms',
    'elements',
    'arrays',
    'thermo_arrays',
    'engine',
    'ensemble',
    'timestep',
    'last_step',
    'last_time',
    'summary',
)


trajectory = _data_group(
    'mofal.trajectory',
    'MD trajectories (`mofal.trajectory`): list, show, export frames as extxyz.',
    'List MD trajectories: frames, atoms, elements, engine, ensemble, mean temperature.',
    (
        ('Id', 'id'),
        ('Label', 'label'),
        ('Frames', 'attributes.num_frames'),
        ('Atoms', 'attributes.num_atoms'),
        ('Elements', 'attributes.elements'),
        ('Engine', 'attributes.engine'),
        ('Ensemble', 'attributes.ensemble'),
        ('T mean (K)', 'attributes.summary.temperature.mean'),
    ),
    "Show a trajectory's size, engine, ensemble, timestep and thermodynamic means.",
    TRAJECTORY_KEYS,
)


@trajectory.command('export')
@_datum('mofal.trajectory')
@options.EXPORT_FORMAT(type=click.Choice(['extxyz']), default='extxyz')
@click.option('--every', type=click.IntRange(min=1), default=1, show_default=True, help='Keep every N-th frame.')
@OUTPUT
@options.FORCE(help='Overwrite the output file.')
@decorators.with_dbenv()
def trajectory_export(datum, fmt, every, output, force):
    """Export frames as extxyz (REF_energy/REF_forces/REF_stress where stored; velocities kept)."""
    from aiida_mofal.mlp.configurations import write_extxyz

    frames = [datum.get_atoms(index) for index in range(0, datum.num_frames, every)]
    _export_text(write_extxyz(frames), output, force, f'{len(frames)} frames')
