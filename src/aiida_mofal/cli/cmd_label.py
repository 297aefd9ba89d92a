"""``mofal label``: CP2K labels for structure files, into one ``mofal.dataset``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import DAEMON_OPTION, JSON_OPTION, echo_json, launch, load_code, process_summary


@cmd_root.command('label')
@click.argument('files', nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option('--protocol', default='moderate', show_default=True, help='xtb, fast, moderate or precise.')
@click.option('--code', 'code_label', default='cp2k@localhost', show_default=True, help='The CP2K code.')
@click.option('--cluster', is_flag=True, help='The structures are non-periodic clusters (molecules).')
@click.option('--charge', type=int, default=None, help='Total charge of every structure (default: file or 0).')
@click.option('--multiplicity', type=int, default=None, help='Spin multiplicity 2S+1 (default: file or 1).')
@click.option('--max-concurrent', type=int, default=None, help='CP2K jobs in flight at once.')
@DAEMON_OPTION
@JSON_OPTION
@decorators.with_dbenv()
def cmd_label(files, protocol, code_label, cluster, charge, multiplicity, max_concurrent, daemon, as_json):
    """Label the structures in FILES with CP2K and store them as one data set (prints its PK).

    Every frame of every file is labelled (energy, forces; stress for periodic cells) together with the free
    atoms of its elements (E0s for MACE). Bad input is refused before anything is submitted.
    """
    from aiida_mofal.structures.io import read_frames
    from aiida_mofal.workchains.label import LabelWorkChain

    code = load_code(code_label, '--code')
    overrides = {'calculation': {'max_concurrent': max_concurrent}} if max_concurrent else None
    try:
        frames = read_frames(files, cluster, charge, multiplicity)
        builder = LabelWorkChain.get_builder_from_protocol(code, frames, protocol=protocol, overrides=overrides)
    except ValueError as exception:  # also ConfigurationError and LabelInputError
        echo.echo_critical(str(exception))
    results, node = launch(builder, daemon, as_json)
    if results is None:
        return
    dataset = results.get('dataset')
    summary = {
        **process_summary(node),
        'workchain': node.pk,
        'dataset': dataset.pk if dataset is not None else None,
        'count': dataset.count if dataset is not None else 0,
        'failed': results['failed'].get_dict() if 'failed' in results else {},
        'isolated_atom_energies': results['isolated_atom_energies'].get_dict()
        if 'isolated_atom_energies' in results
        else {},
    }
    if as_json:
        echo_json(summary)
    elif dataset is not None:
        echo.echo_success(
            f'data set {dataset.pk}: {dataset.count} of {len(frames)} structures labelled '
            f'(LabelWorkChain<{node.pk}>); export it with `mofal dataset export {dataset.pk} out.xyz`'
        )
    for key, failure in summary['failed'].items():
        echo.echo_warning(f'{key} not labelled: {failure["reason"]} (process {failure["pk"]})')
    if not node.is_finished_ok:
        sys.exit(1)
