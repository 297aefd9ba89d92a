"""``mofal analyse glass``: structural analysis of a ZIF glass (or crystal) from a file or a stored node."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import click
from aiida.cmdline.utils import echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json


@cmd_root.group('analyse')
def cmd_analyse():
    """Analyse structures and trajectories."""


def parse_frames(text: str | None) -> slice:
    """Return the slice of ``START:STOP:STEP`` (Python's slice syntax, each part optional) or of one index ``N``."""
    if text is None:
        return slice(None)
    parts = text.split(':')
    try:
        numbers = [int(part) if part.strip() else None for part in parts]
    except ValueError:
        numbers = None
    if numbers is None or len(parts) > 3 or (len(parts) == 3 and numbers[2] == 0):
        raise click.BadParameter(
            f'{text!r} is not a frame selection: give START:STOP:STEP like 100:: (from frame 100), ::10 '
            '(every tenth frame), -50: (the last fifty) or one frame index like -1',
            param_hint='--frames',
        )
    if len(parts) == 1:
        index = numbers[0]
        if index is None:
            raise click.BadParameter(
                'an empty frame selection: give START:STOP:STEP or one index', param_hint='--frames'
            )
        return slice(index, index + 1 if index != -1 else None)
    return slice(*numbers)


def _read_file(path: Path, what: str):
    from ase.io import read

    fix = (
        'give a CIF, an extxyz (one or more frames) or any format ase.io.read knows, '
        'or the PK of a structure or trajectory node'
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # ASE warns about CIF symmetry and occupancy details
            frames = read(path, index=':')
    except Exception as exception:
        raise click.BadParameter(f'{path}: ASE cannot read this file ({exception}); {fix}', param_hint=what) from None
    if not frames:
        raise click.BadParameter(
            f'{path}: ASE cannot read this file (it found no structure in it); {fix}', param_hint=what
        )
    return frames


def load_frames(value: str, frames: slice, what: str = 'STRUCTURE_OR_TRAJECTORY') -> tuple[list, str]:
    """Return the selected frames (ASE Atoms) of a file or of a stored node, and a label for them."""
    path = Path(value)
    if path.is_file():
        selected = _read_file(path, what)
        label = path.stem
        count = len(selected)
        selected = selected[frames]
    else:
        node = _load_node(value, what)
        from aiida import orm

        from aiida_mofal.data.trajectory import MdTrajectoryData

        if isinstance(node, MdTrajectoryData):
            count = node.num_frames
            selected = [node.get_atoms(index, labels=False) for index in range(count)[frames]]
        elif isinstance(node, orm.StructureData):
            count = 1
            selected = [node.get_ase()][frames]
        else:
            raise click.BadParameter(
                f'node {value} is a {type(node).__name__}; give a StructureData or a mofal.trajectory node',
                param_hint=what,
            )
        label = node.label or f'{type(node).__name__}<{node.pk}>'
    if not selected:
        raise click.BadParameter(
            f'the frame selection {_describe(frames)} selects no frame of the {count} in {value} '
            f'(frames are numbered 0 to {count - 1}, or -{count} to -1 from the end)',
            param_hint='--frames',
        )
    return selected, label


def _describe(frames: slice) -> str:
    return ':'.join('' if part is None else str(part) for part in (frames.start, frames.stop, frames.step))


def _load_node(value: str, what: str):
    from aiida import orm
    from aiida.common.exceptions import ConfigurationError, MissingConfigurationError, ProfileConfigurationError

    try:
        from aiida.manage import get_manager

        if get_manager().get_profile() is None:
            from aiida import load_profile

            load_profile()
        return orm.load_node(value)
    except (MissingConfigurationError, ProfileConfigurationError, ConfigurationError):
        raise click.BadParameter(
            f'{value!r} is not a file, and there is no AiiDA profile to look it up as a node (run mofal setup)',
            param_hint=what,
        ) from None
    except Exception:
        raise click.BadParameter(
            f'{value!r} is neither a readable file nor a stored node: give a CIF/extxyz path or the PK of a '
            'StructureData or mofal.trajectory node',
            param_hint=what,
        ) from None


@cmd_analyse.command('glass')
@click.argument('source', metavar='STRUCTURE_OR_TRAJECTORY')
@click.option('--pairs', default='Zn-N,Zn-Zn,N-N', show_default=True, help='Element pairs of the partial RDFs.')
@click.option('--frames', 'frames_text', metavar='SLICE', help='Frames to average, START:STOP:STEP (default: all).')
@click.option('--reference', metavar='CRYSTAL', help='Structure (file or PK) to measure the distance to.')
@click.option('--temperature', type=float, default=300.0, show_default=True, help='Temperature of the PMFs (K).')
@click.option('--r-max', type=float, default=10.0, show_default=True, help='RDF range (Å).')
@click.option('--bin-width', type=float, default=0.05, show_default=True, help='RDF bin width (Å).')
@click.option('--cutoff', type=float, default=2.5, show_default=True, help='Zn–N contact cutoff (Å).')
@click.option('--max-ring-size', type=int, default=16, show_default=True, help='Largest ring searched (Zn per ring).')
@click.option('--no-rings', is_flag=True, help='Skip the ring statistics.')
@click.option(
    '--ring-every', type=int, default=1, show_default=True, help='Ring statistics on every N-th selected frame.'
)
@click.option(
    '-o', '--output', type=click.Path(file_okay=False, path_type=Path), help='Write PNG plots and analysis.json here.'
)
@JSON_OPTION
def cmd_glass(
    source,
    pairs,
    frames_text,
    reference,
    temperature,
    r_max,
    bin_width,
    cutoff,
    max_ring_size,
    no_rings,
    ring_every,
    output,
    as_json,
):
    """Analyse the structure of a ZIF glass: RDFs, PMF, N-Zn-N angles, Zn-N coordination, density and rings.

    STRUCTURE_OR_TRAJECTORY is a file ASE can read (CIF, extxyz with one or more frames, ...) or the PK of a
    StructureData or mofal.trajectory node. Frames are averaged; spreads across frames are reported.
    """
    from aiida_mofal.analysis.glass import GlassSettings, analyse_glass, compare_to_reference

    try:
        settings = GlassSettings(
            pairs=pairs,
            r_max=r_max,
            bin_width=bin_width,
            temperature=temperature,
            cutoff=cutoff,
            rings=not no_rings,
            max_ring_size=max_ring_size,
            ring_every=ring_every,
        )
    except ValueError as exception:
        raise click.UsageError(str(exception)) from None
    frames, label = load_frames(source, parse_frames(frames_text))
    reference_frames = load_frames(reference, slice(None), what='--reference') if reference else None
    try:
        result = analyse_glass(frames, settings)
        results = {label: result}
        if reference_frames:
            reference_result = analyse_glass(reference_frames[0][:1], settings)
            result['reference'] = compare_to_reference(result, reference_result)
            results[f'{reference_frames[1]} (reference)'] = reference_result
    except ValueError as exception:
        raise click.UsageError(str(exception)) from None
    for warning in result['warnings']:
        echo.echo_warning(warning, err=True)
    if output is not None:
        from aiida_mofal.analysis.glass_plots import plot_glass

        written = plot_glass(results, output)
        (output / 'analysis.json').write_text(json.dumps(result, indent=2, sort_keys=True))
        result['files'] = [str(path) for path in written] + [str(output / 'analysis.json')]
    if as_json:
        echo_json(result)
        return
    _print_summary(result, label)


def _print_summary(result: dict, label: str) -> None:
    def number(value, digits=3):
        return '-' if value is None else f'{value:.{digits}f}'

    echo.echo_report(f'{label}: {result["formula"]}, {result["n_atoms"]} atoms, {result["n_frames"]} frame(s)')
    click.echo(f'density            {number(result["density_g_cm3"])} g/cm3')
    for pair, value in (result.get('coordination') or {}).items():
        click.echo(f'coordination {pair:<6}{number(value)}')
    for triple, entry in (result.get('angles') or {}).items():
        click.echo(f'angle {triple:<12} {number(entry["mean"], 1)} ± {number(entry["std"], 1)} deg')
    for pair, entry in result['rdf'].items():
        barrier = result['pmf'][pair]['barrier_kJ_mol']
        click.echo(
            f'rdf {pair:<6} first peak {number(entry["first_peak"], 2)} A, first minimum '
            f'{number(entry["first_minimum"], 2)} A, PMF barrier {number(barrier, 1)} kJ/mol'
        )
    if result.get('rings'):
        sizes = ', '.join(f'{size}: {number(count, 1)}' for size, count in result['rings'].items())
        click.echo(f'rings per cell     {sizes} (Zn per ring)')
    if 'reference' in result:
        chi = ', '.join(f'{pair} {number(value)}' for pair, value in result['reference']['rdf_r_chi'].items())
        click.echo(f'R_chi to reference {chi}')
    for path in result.get('files', []):
        echo.echo_success(f'wrote {path}')
