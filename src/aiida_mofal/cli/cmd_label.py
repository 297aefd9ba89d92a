"""``mofal label``: CP2K labels for structure files, into one ``mofal.dataset``."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json


def read_frames(files, cluster: bool, charge: int | None, multiplicity: int | None) -> list:
    """Read every frame of ``files`` (extxyz, xyz, CIF, ... anything ASE reads) and mark it periodic or cluster.

    A frame keeps the ``charge``/``multiplicity`` its extxyz header carries unless the options override them.
    """
    import warnings

    import ase.io
    import numpy as np

    frames = []
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                read = ase.io.read(str(path), index=':')
        except Exception as exception:
            raise click.BadParameter(f'{path}: ASE cannot read it ({exception}).', param_hint='FILES') from None
        for index, atoms in enumerate(read):
            atoms.calc = None
            # CIF readers leave objects (space group, occupancies) in info: a data set keeps only scalars
            scalars = (str, int, float, np.integer, np.floating)
            atoms.info = {key: value for key, value in atoms.info.items() if isinstance(value, scalars)}
            for name in [name for name, array in atoms.arrays.items() if array.dtype == object]:
                atoms.arrays[name] = atoms.arrays[name].astype(str)  # e.g. a cluster's `role`
            if cluster:
                atoms.pbc = False
                atoms.info['config_type'] = 'cluster'
            elif 'config_type' not in atoms.info:
                if not atoms.pbc.all():
                    raise click.BadParameter(
                        f'{path} frame {index}: not periodic in all directions (pbc={atoms.pbc.tolist()}); '
                        'give it a cell or pass --cluster for a non-periodic molecule.',
                        param_hint='FILES',
                    )
                atoms.info['config_type'] = 'periodic'
            if charge is not None:
                atoms.info['charge'] = charge
            if multiplicity is not None:
                atoms.info['multiplicity'] = multiplicity
            atoms.info['source_file'] = Path(path).name
            frames.append(atoms)
    return frames


@cmd_root.command('label')
@click.argument('files', nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option('--protocol', default='moderate', show_default=True, help='xtb, fast, moderate or precise.')
@click.option('--code', 'code_label', default='cp2k@localhost', show_default=True, help='The CP2K code.')
@click.option('--cluster', is_flag=True, help='The structures are non-periodic clusters (molecules).')
@click.option('--charge', type=int, default=None, help='Total charge of every structure (default: file or 0).')
@click.option('--multiplicity', type=int, default=None, help='Spin multiplicity 2S+1 (default: file or 1).')
@click.option('--max-concurrent', type=int, default=None, help='CP2K jobs in flight at once.')
@click.option('--daemon', is_flag=True, help='Submit to the daemon and return at once (prints the work chain).')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_label(files, protocol, code_label, cluster, charge, multiplicity, max_concurrent, daemon, as_json):
    """Label the structures in FILES with CP2K and store them as one data set (prints its PK).

    Every frame of every file is labelled (energy, forces; stress for periodic cells) together with the free
    atoms of its elements (E0s for MACE). Bad input is refused before anything is submitted.
    """
    from aiida import engine, orm
    from aiida.common.exceptions import NotExistent

    from aiida_mofal.mlp.configurations import ConfigurationError
    from aiida_mofal.workchains.label import LabelWorkChain

    try:
        code = orm.load_code(code_label)
    except NotExistent:
        echo.echo_critical(f'no code {code_label!r}: run `mofal setup` (localhost) or give --code LABEL@COMPUTER.')
    overrides = {'calculation': {'max_concurrent': max_concurrent}} if max_concurrent else None
    try:
        frames = read_frames(files, cluster, charge, multiplicity)
        builder = LabelWorkChain.get_builder_from_protocol(code, frames, protocol=protocol, overrides=overrides)
    except (ValueError, ConfigurationError) as exception:
        echo.echo_critical(str(exception))

    if daemon:
        node = engine.submit(builder)
        if as_json:
            echo_json({'workchain': node.pk, 'submitted': True})
        else:
            echo.echo_success(f'submitted LabelWorkChain<{node.pk}>; follow it with `verdi process status {node.pk}`')
        return
    # with --json, standard output carries only the JSON: AiiDA's progress reports go to standard error
    quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with quiet:
        results, node = engine.run_get_node(builder)
    summary = {
        'workchain': node.pk,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'dataset': results['dataset'].pk if 'dataset' in results else None,
        'count': results['dataset'].count if 'dataset' in results else 0,
        'failed': results['failed'].get_dict() if 'failed' in results else {},
        'isolated_atom_energies': results['isolated_atom_energies'].get_dict()
        if 'isolated_atom_energies' in results
        else {},
    }
    if as_json:
        echo_json(summary)
    elif summary['dataset'] is not None:
        echo.echo_success(
            f'data set {summary["dataset"]}: {summary["count"]} of {len(frames)} structures labelled '
            f'(LabelWorkChain<{node.pk}>); export it with `mofal dataset export {summary["dataset"]} out.xyz`'
        )
    for key, failure in summary['failed'].items():
        echo.echo_warning(f'{key} not labelled: {failure["reason"]} (process {failure["pk"]})')
    if not node.is_finished_ok:
        sys.exit(1)
