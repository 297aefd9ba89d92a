"""``mofal build`` and ``mofal clusters``: disordered cells to cut from, and the clusters cut out of them."""

from __future__ import annotations

from pathlib import Path

import click
from aiida.cmdline.utils import echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json


def _fraction(name: str):
    return click.option(
        f'--{name}', type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True, help=f'{name} fraction'
    )


@cmd_root.group('build')
def cmd_build():
    """Build (defective) framework cells."""


@cmd_build.command('uio66')
@click.option('--supercell', type=click.IntRange(min=1), default=1, show_default=True, help='n for an n×n×n cell.')
@click.option('--linker', type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True, help='linkers removed')
@click.option('--hf', type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True, help='metal sites Zr→Hf')
@click.option('--brick', type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True, help='bricks removed')
@click.option('--seed', type=int, default=0, show_default=True)
@click.option('--metal', type=click.Choice(['Zr', 'Hf']), default='Zr', show_default=True)
@click.option(
    '--preset',
    type=click.Choice(['S_sup', 'S_sup_star', 'S_ld', 'S_hf', 'S_reo']),
    help="One of the cluster paper's structures (exact counts; see docs/guide/clusters.md); no fractions then.",
)
@click.option('-o', '--output', type=click.Path(dir_okay=False, path_type=Path), required=True, help='extxyz/cif/...')
@click.option('--store', is_flag=True, help='Also store it as a StructureData through a calcfunction.')
@JSON_OPTION
def cmd_build_uio66(supercell, linker, hf, brick, seed, metal, preset, output, store, as_json):
    """Build a disordered UiO-66 cell (linker vacancies with formate caps, reo brick vacancies, Zr→Hf).

    Fractions are of the pristine counts; the same seed gives the same cell. The cluster paper's cells come
    from `--preset`: `mofal build uio66 --preset S_sup --seed 0 -o sup.xyz` is (0.21-0.13-0.40) with
    22,052 atoms (the text's "20 % linkers, 10 % bricks" fractions give another cell).
    """
    import ase.io

    from aiida_mofal.structures.uio66 import build_uio66

    if preset is not None:
        if supercell != 1 or linker or hf or brick:
            raise click.UsageError('--preset fixes the cell and its defects: drop --supercell/--linker/--hf/--brick.')
        parameters = {'preset': preset, 'seed': seed, 'metal': metal}
    else:
        parameters = {'supercell': supercell, 'linker': linker, 'hf': hf, 'brick': brick, 'seed': seed, 'metal': metal}
    pk = None
    if store:
        from aiida import load_profile, orm

        from aiida_mofal.calculations.clusters import build_uio66_structure

        load_profile()
        structure = build_uio66_structure(orm.Dict(parameters))
        atoms, pk = structure.get_ase(), structure.pk
        atoms.info.update(structure.base.attributes.get('mofal_builder', {}))
    elif preset is not None:
        from aiida_mofal.structures.presets import build_uio66_preset

        atoms = build_uio66_preset(preset, seed=seed, metal=metal)
    else:
        atoms = build_uio66(**parameters)
    summary = {k: v for k, v in atoms.info.items() if isinstance(v, (int, float, str))}
    output.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(output, atoms)
    summary.update(atoms=len(atoms), output=str(output), structure=pk, formula=atoms.get_chemical_formula())
    if as_json:
        echo_json(summary)
    else:
        counts = ', '.join(
            f'{k} {summary[k]}' for k in ('n_linkers_removed', 'n_bricks_removed', 'n_hf') if k in summary
        )
        echo.echo_success(
            f'{len(atoms)} atoms ({counts}) written to {output}' + (f'; StructureData {pk}' if pk else '')
        )


def _atoms_list(value: str) -> list[int]:
    try:
        return [int(token) for token in value.replace(' ', '').split(',') if token]
    except ValueError:
        raise click.BadParameter(f'{value!r}: give 0-based atom indices separated by commas, e.g. 0,17,42') from None


@cmd_root.command('clusters')
@click.argument('structure_file', metavar='STRUCTURE', type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option('--atoms', 'atom_list', help='0-based indices (as in ASE) of the atoms to centre clusters on: 0,17,42')
@click.option('--model', help='MACE model node (PK/UUID): flag the atoms its density model calls unknown.')
@click.option('--density', help='Density model node (PK/UUID) fitted on that model.')
@click.option(
    '-o', '--output', type=click.Path(file_okay=False, path_type=Path), help='directory (not with --validate)'
)
@click.option('--mantle-depth', type=click.IntRange(min=0), default=1, show_default=True)
@click.option('--merge-depth', type=click.IntRange(min=0), default=1, show_default=True)
@click.option('--vacuum', type=click.FloatRange(0.0, 100.0), default=6.0, show_default=True, help='Å on each side')
@click.option('--max-clusters', type=click.IntRange(min=1), default=None, help='most uncertain first')
@click.option(
    '--validate',
    is_flag=True,
    help='Force matching with --model as the calculator: core-atom force error against the bulk, mantle depths 0/1/2.',
)
@click.option(
    '--threshold',
    type=click.FloatRange(min=0.0, min_open=True),
    default=0.05,
    show_default=True,
    help='eV/Å: --validate names the cheapest depth whose worst core RMSE is below it.',
)
@JSON_OPTION
def cmd_clusters(
    structure_file,
    atom_list,
    model,
    density,
    output,
    mantle_depth,
    merge_depth,
    vacuum,
    max_clusters,
    validate,
    threshold,
    as_json,
):
    """Cut H-capped clusters (core, mantle, caps) out of STRUCTURE and write one extxyz per cluster to DIR.

    Each file carries `charge`, `multiplicity` and `config_type=cluster` in its header and the per-atom
    arrays `role` (core/mantle/cap) and `parent_index` (-1 for caps); label them with
    `mofal label DIR/*.xyz --cluster --protocol xtb`.
    """
    import numpy as np

    from aiida_mofal.clusters.extract import extract_clusters
    from aiida_mofal.mlp.configurations import write_extxyz

    if validate:
        if not model or not (atom_list or density):
            raise click.UsageError('--validate needs --model (the calculator) and --atoms or --density.')
    elif bool(atom_list) == bool(model or density):
        raise click.UsageError('give either --atoms or both --model and --density.')
    elif output is None:
        raise click.UsageError('give -o/--output, the directory for the cluster files.')
    from aiida_mofal.mlp.configurations import validate_configuration
    from aiida_mofal.structures.io import read_frames

    try:  # the checks of `mofal label`: readable, one periodic frame, no partial occupancy, NaN or overlapping atoms
        frames = read_frames([structure_file], charge=0, multiplicity=1)
        if len(frames) != 1:
            raise ValueError(f'{structure_file} holds {len(frames)} frames; give one.')
        atoms = frames[0]
        validate_configuration(atoms, str(structure_file))
    except ValueError as error:
        echo.echo_critical(str(error))
    uncertainty = None
    if atom_list:
        flagged = _atoms_list(atom_list)
        bad = [i for i in flagged if not 0 <= i < len(atoms)]
        if bad:
            raise click.BadParameter(f'{bad} outside 0..{len(atoms) - 1} ({len(atoms)} atoms)', param_hint='--atoms')
    else:
        if not (model and density):
            raise click.UsageError('--model and --density go together.')
        flagged, uncertainty = _flag_unknown(atoms, model, density)
    if validate:
        _validate_mantles(atoms, flagged, uncertainty, model, merge_depth, vacuum, max_clusters, threshold, as_json)
        return
    try:
        clusters = extract_clusters(
            atoms,
            flagged,
            uncertainty=uncertainty,
            mantle_depth=mantle_depth,
            vacuum=vacuum,
            max_clusters=max_clusters,
            merge_depth=merge_depth,
        )
    except ValueError as error:  # broken chemistry (a dangling H, an unknown valence): say which atoms
        echo.echo_critical(f'{structure_file}: no cluster can be cut: {error}')
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, cluster in enumerate(clusters):
        path = output / f'cluster_{index:04d}.xyz'
        path.write_text(write_extxyz([cluster]))
        roles = cluster.arrays['role']
        rows.append(
            {
                'file': str(path),
                'atoms': len(cluster),
                'charge': int(cluster.info['charge']),
                'multiplicity': int(cluster.info['multiplicity']),
                'core': int(np.sum(roles == 'core')),
                'mantle': int(np.sum(roles == 'mantle')),
                'caps': int(np.sum(roles == 'cap')),
                'seed_atom': int(cluster.info.get('seed_atom', -1)),
            }
        )
    if as_json:
        echo_json({'structure': str(structure_file), 'flagged': len(flagged), 'clusters': rows})
        return
    for row in rows:
        echo.echo(
            f'{row["file"]}: {row["atoms"]} atoms (core {row["core"]}, mantle {row["mantle"]}, caps {row["caps"]}), '
            f'charge {row["charge"]}, multiplicity {row["multiplicity"]}'
        )
    echo.echo_success(f'{len(rows)} clusters around {len(flagged)} flagged atoms written to {output}')


def _flag_unknown(atoms, model_id: str, density_id: str):
    """Per-atom uncertainty from a density model: flagged = atoms above their element's threshold."""
    from aiida import load_profile, orm

    load_profile()
    import numpy as np

    model_node, density_node = orm.load_node(model_id), orm.load_node(density_id)
    try:
        (score,) = density_node.score([atoms], model_node)
    except ValueError as error:  # an element the model does not know, a density model of another model, ...
        raise click.ClickException(str(error)) from None
    return [int(i) for i in np.flatnonzero(score['unknown'])], score['uncertainty']


def _validate_mantles(atoms, flagged, uncertainty, model_id, merge_depth, vacuum, max_clusters, threshold, as_json):
    """Print the core-atom force error of clusters of mantle depth 0, 1, 2 against the bulk, and the cheapest depth."""
    import numpy as np
    from aiida import load_profile, orm

    from aiida_mofal.clusters.forcematch import cheapest_depth, compare_mantle_depths

    load_profile()
    calculator = orm.load_node(model_id).get_calculator()
    if uncertainty is not None:  # most uncertain first, as the campaign would cut them
        order = np.argsort(-np.asarray(uncertainty)[flagged], kind='stable')
        flagged = [flagged[i] for i in order]
    if max_clusters is not None:
        flagged = flagged[:max_clusters]
    errors = compare_mantle_depths(atoms, flagged, calculator, merge_depth=merge_depth, vacuum=vacuum)
    best = cheapest_depth(errors, threshold)
    rows = {
        depth: {
            'clusters': len(values),
            'core_force_rmse_median_mev_per_a': float(1000 * np.median(values)) if values else None,
            'core_force_rmse_max_mev_per_a': float(1000 * np.max(values)) if values else None,
        }
        for depth, values in errors.items()
    }
    if as_json:
        echo_json({'depths': rows, 'threshold_mev_per_a': 1000 * threshold, 'cheapest_depth': best})
        return
    for depth, row in rows.items():
        echo.echo(
            f'mantle depth {depth}: {row["clusters"]} clusters, core-atom force RMSE median '
            f'{row["core_force_rmse_median_mev_per_a"]:.1f}, max {row["core_force_rmse_max_mev_per_a"]:.1f} meV/Å'
        )
    if best is None:
        echo.echo_warning(f'no depth keeps every core RMSE below {1000 * threshold:.0f} meV/Å')
    else:
        echo.echo_success(f'cheapest depth under {1000 * threshold:.0f} meV/Å: {best}')
