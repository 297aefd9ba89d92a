"""``mofal select``: choose training configurations from frames (``mofal select cbad``)."""

from __future__ import annotations

from pathlib import Path

import click
from aiida.cmdline.utils import echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json

DEFAULT_SCAN = '0.25,0.5,0.75,1,1.5,2,3,4'


@cmd_root.group('select')
def cmd_select():
    """Select configurations worth labelling."""


def _parse_resolutions(values: tuple[str, ...]) -> dict[str, float]:
    from aiida_mofal.selection.cbad import CbadError, check_resolutions

    resolutions = {}
    for text in values:
        family, sep, value = text.partition('=')
        if not sep:
            raise click.BadParameter(
                f'expected FAMILY=VALUE (e.g. dihedral=10), got {text!r}', param_hint='--resolution'
            )
        try:
            resolutions[family.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f'{value!r} is not a number', param_hint='--resolution') from None
    try:
        return check_resolutions(resolutions)
    except CbadError as exception:
        raise click.BadParameter(str(exception), param_hint='--resolution') from None


def _parse_factors(text: str) -> list[float]:
    try:
        factors = [float(part) for part in text.split(',') if part.strip()]
    except ValueError:
        raise click.BadParameter(
            f'expected numbers separated by commas, got {text!r}', param_hint='--scan-factors'
        ) from None
    if not factors or any(not f > 0 for f in factors):
        raise click.BadParameter(f'scale factors must be > 0, got {text!r}', param_hint='--scan-factors')
    return factors


def _load(value: str, what: str):
    """Return the stored node of a PK/UUID/label (the profile is loaded only when a node is asked for)."""
    from aiida import orm
    from aiida.cmdline.utils.decorators import load_backend_if_not_loaded

    load_backend_if_not_loaded()
    try:
        return orm.load_node(value)
    except Exception:
        echo.echo_critical(f'{value!r} is neither a readable file nor a stored node; give {what}.')


def _read_frames(value: str):
    """``(frames, positions, cells)``: a list of Atoms from a file, or the arrays of a ``mofal.trajectory`` node."""
    path = Path(value)
    if path.is_file():
        import ase.io

        try:
            return ase.io.read(str(path), index=':'), None, None
        except Exception as exception:
            echo.echo_critical(f'{path}: ASE cannot read frames from it ({exception}).')
    from aiida_mofal.data.trajectory import MdTrajectoryData

    node = _load(value, 'an extxyz/trajectory file or a mofal.trajectory PK')
    if not isinstance(node, MdTrajectoryData):
        echo.echo_critical(f'node {value} is a {type(node).__name__}, not a mofal.trajectory.')
    return node, node.get_array('positions'), node.get_array('cells')


def _read_reference(value: str):
    path = Path(value)
    if path.is_file():
        import warnings

        import ase.io

        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')  # CIF symmetry/occupancy notices
                return ase.io.read(str(path))
        except Exception as exception:
            echo.echo_critical(f'{path}: ASE cannot read this structure ({exception}).')
    from aiida import orm

    node = _load(value, 'a structure file or a StructureData PK')
    if not isinstance(node, orm.StructureData):
        echo.echo_critical(f'node {value} is a {type(node).__name__}, not a StructureData.')
    return node.get_ase()


@cmd_select.command('cbad')
@click.argument('frames', metavar='FRAMES')
@click.option(
    '--reference', required=True, metavar='STRUCTURE', help='Reference structure: a file or a StructureData PK.'
)
@click.option(
    '--resolution', 'resolutions', multiple=True, metavar='FAMILY=VALUE',
    help='Bin width of a family: cell_length (Å), cell_angle (°), bond (Å), angle (°), dihedral (°). Repeatable.',
)  # fmt: skip
@click.option('--from-dataset', metavar='PK', help='Start from the occupancy of this mofal.dataset (a training set).')
@click.option(
    '-o', '--output', type=click.Path(dir_okay=False, path_type=Path), help='Write the selected frames here (extxyz).'
)
@click.option('--scan', is_flag=True, help='Print the number selected as all resolutions are scaled together.')
@click.option('--scan-factors', default=DEFAULT_SCAN, show_default=True, help='Scale factors for --scan.')
@JSON_OPTION
def cmd_cbad(frames, reference, resolutions, from_dataset, output, scan, scan_factors, as_json):
    """Select FRAMES (extxyz/trajectory file or mofal.trajectory PK) by their cell, bond, angle and dihedral bins.

    A frame is kept when at least one of its (descriptor type, bin) pairs is not yet occupied (Sharma & Sanvito);
    frames are taken in input order and must list the reference's atoms in the same order.
    """
    from aiida_mofal.selection.cbad import CbadError, CbadOccupancy, CbadTopology, check_numbers, scaled_resolutions

    resolutions = _parse_resolutions(resolutions)
    factors = _parse_factors(scan_factors) if scan else []
    loaded, positions, cells = _read_frames(frames)
    source = loaded if positions is None else positions
    try:
        topology = CbadTopology.from_reference(_read_reference(reference))
        if positions is not None:  # a trajectory node: the same atoms in every frame, checked once
            if not all(loaded.pbc):
                raise CbadError(f'trajectory {frames} is not periodic in 3D; CBAD frames need the full cell.')
            check_numbers(topology, loaded.numbers)
        start = CbadOccupancy(resolutions)
        if from_dataset:
            from aiida_mofal.data import DatasetData

            dataset = _load(from_dataset, 'a mofal.dataset PK')
            if not isinstance(dataset, DatasetData):
                echo.echo_critical(f'node {from_dataset} is a {type(dataset).__name__}, not a mofal.dataset.')
            start.add(topology, dataset.get_atoms())
        selected = start.copy().select(topology, source, cells)
        scanned = []
        for factor in factors:
            scaled = scaled_resolutions(resolutions, factor)
            occupancy = CbadOccupancy(scaled, {})
            if from_dataset:
                occupancy.add(topology, dataset.get_atoms())
            scanned.append(
                {'factor': factor, 'resolutions': scaled, 'n_selected': len(occupancy.select(topology, source, cells))}
            )
    except CbadError as exception:
        echo.echo_critical(str(exception))
    n_frames = len(loaded)
    if output is not None:
        import ase.io

        chosen = [loaded[int(i)] if positions is None else loaded.get_atoms(int(i), labels=False) for i in selected]
        ase.io.write(str(output), chosen, format='extxyz')
    result = {
        'selected': [int(i) for i in selected],
        'n_frames': n_frames,
        'n_selected': len(selected),
        'descriptor_types': topology.family_counts(),
        'atom_types': list(topology.atom_type_names),
    }
    if scan:
        result['scan'] = scanned
    if as_json:
        echo_json(result)
        return
    echo.echo(f'{len(topology.atom_type_names)} atom types: {", ".join(topology.atom_type_names)}')
    echo.echo(
        'descriptor types: ' + ', '.join(f'{family} {count}' for family, count in result['descriptor_types'].items())
    )
    echo.echo('resolutions: ' + ', '.join(f'{family} {value:g}' for family, value in resolutions.items()))
    echo.echo_success(f'{len(selected)} of {n_frames} frames selected' + (f', written to {output}' if output else ''))
    if scan:
        echo.echo(f'{"factor":>8} {"selected":>9}  ' + '  '.join(f'{family:>11}' for family in resolutions))
        for row in scanned:
            widths = '  '.join(f'{row["resolutions"][family]:>11.4g}' for family in resolutions)
            echo.echo(f'{row["factor"]:>8g} {row["n_selected"]:>9d}  {widths}')
