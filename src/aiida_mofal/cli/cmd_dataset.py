"""``mofal dataset``: create, inspect and export labelled data sets."""

from pathlib import Path

import click
from aiida.cmdline.params import arguments, types
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json


@cmd_root.group('dataset')
def cmd_dataset():
    """Labelled data sets (`mofal.dataset` nodes)."""


def _summary(node) -> dict:
    return {
        'pk': node.pk,
        'uuid': node.uuid,
        'count': node.count,
        'num_atoms': node.base.attributes.get('num_atoms'),
        'elements': node.elements,
        'labels': node.labels,
        'config_types': node.config_types,
        'level_of_theory': node.level_of_theory,
        'isolated_atom_energies': node.isolated_atom_energies,
        'sha256': node.base.attributes.get('sha256'),
    }


@cmd_dataset.command('import')
@click.argument('files', nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option('--label', default='', help='Label of the new node.')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_import(files, label, as_json):
    """Store extxyz FILES (MACE's REF_* keys) as one data set; nothing is stored if any frame is bad."""
    from aiida_mofal.data import DatasetData
    from aiida_mofal.mlp.configurations import ConfigurationError, read_extxyz

    frames = []
    for path in files:
        try:
            frames.extend(read_extxyz(str(path)))
        except Exception as exception:
            echo.echo_critical(f'{path}: cannot read as extxyz ({exception}).')
    if not frames:
        echo.echo_critical(f'{", ".join(map(str, files))}: no configurations found; nothing was stored.')
    try:
        node = DatasetData(frames, label=label).store()
    except ConfigurationError as exception:
        echo.echo_critical(str(exception))
    if as_json:
        echo_json(_summary(node))
    else:
        echo.echo_success(f'stored data set {node.pk} with {node.count} configurations')


@cmd_dataset.command('show')
@arguments.DATUM(type=types.DataParamType(sub_classes=('aiida.data:mofal.dataset',)))
@JSON_OPTION
def cmd_show(datum, as_json):
    """Show what a data set holds."""
    summary = _summary(datum)
    if as_json:
        echo_json(summary)
        return
    for key, value in summary.items():
        click.echo(f'{key:<24} {value}')


@cmd_dataset.command('export')
@arguments.DATUM(type=types.DataParamType(sub_classes=('aiida.data:mofal.dataset',)))
@click.argument('output', type=click.Path(dir_okay=False, path_type=Path))
@click.option('-f', '--force', is_flag=True, help='Overwrite OUTPUT if it exists.')
@JSON_OPTION
def cmd_export(datum, output, force, as_json):
    """Write a data set to OUTPUT as extxyz with MACE's REF_* keys (ready for mace_run_train)."""
    if output.exists() and not force:
        echo.echo_critical(f'{output} exists; use --force to overwrite it.')
    if not output.parent.is_dir():
        echo.echo_critical(f'folder {output.parent} does not exist; create it first or choose another OUTPUT.')
    datum.export(output)
    if as_json:
        echo_json({'pk': datum.pk, 'output': str(output.resolve()), 'count': datum.count})
    else:
        echo.echo_success(f'wrote {datum.count} configurations to {output}')
