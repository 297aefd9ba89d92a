"""``mofal melt-quench``: glasses from a crystal (the ``mofal.melt_quench`` work chain), MACE or ReaxFF."""

from __future__ import annotations

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import (
    DAEMON_OPTION,
    JSON_OPTION,
    PYTHON_CODE_OPTION,
    WALLTIME_OPTION,
    echo_json,
    launch,
    load_code,
    parse_overrides,
    process_summary,
)

ENGINE_CHOICES = ('lammps-python', 'ase', 'lammps-mliap')


def glass_summary(outputs) -> dict:
    """Return what ``--json`` prints per glass: node PKs, the integrity record and the analysis."""
    return {
        'structure': outputs['structure'].pk,
        'trajectory': outputs['trajectory'].pk,
        'num_frames': outputs['trajectory'].num_frames,
        'integrity': outputs['integrity'].get_dict(),
        'analysis': outputs['analysis'].get_dict(),
    }


def _headline(name: str, glass: dict) -> str:
    analysis, integrity = glass['analysis'], glass['integrity']
    coordination = next(iter((analysis.get('coordination') or {}).values()), None)
    rings = ', '.join(f'{size}: {count:g}' for size, count in (analysis.get('rings') or {}).items())
    return (
        f'{name}: structure {glass["structure"]}, {glass["num_frames"]} frames; linkers '
        f'{"intact" if integrity["intact"] else "changed"}{" (fallback)" if integrity["fallback_used"] else ""}; '
        f'density {analysis["density_g_cm3"]:.3f} g/cm3; coordination {coordination}; rings {rings or "-"}'
    )


@cmd_root.command('melt-quench')
@click.argument('structure')
@click.option('--model', help='MACE model: a mofal.mace_model PK/UUID or a .model file (not with --reaxff).')
@click.option('--trust-model-file', is_flag=True,
              help='The --model file is a MACE .model pickle you made or trust (docs/guide/security.md).')  # fmt: skip
@click.option('--reaxff', is_flag=True, help='The ReaxFF baseline (the ZIF force field shipped in a checkout).')
@click.option('--force-field', type=click.Path(exists=True, dir_okay=False), help='ReaxFF ffield file (--reaxff).')
@click.option('--control', type=click.Path(exists=True, dir_okay=False), help='ReaxFF control file (--reaxff).')
@click.option('--engine', type=click.Choice(ENGINE_CHOICES), default='lammps-python', show_default=True,
              help='MACE MD engine.')  # fmt: skip
@click.option('--mliap-model', type=click.Path(exists=True, dir_okay=False),
              help='lammps-mliap: the model exported by `mace_create_lammps_model --format mliap`.')  # fmt: skip
@click.option('--protocol', type=click.Choice(('melt_quench', 'smoke')), default='melt_quench', show_default=True,
              help='melt_quench: the paper (580,000 steps); smoke: the same stages in 1,500 steps.')  # fmt: skip
@click.option('--supercell', type=click.IntRange(min=1), nargs=3, default=(2, 2, 2), show_default=True,
              help='Repetitions of the cell along a, b, c.')  # fmt: skip
@click.option('--replicas', type=click.IntRange(min=1), default=1, show_default=True, help='Glasses (seeds).')
@click.option('--override', 'overrides', multiple=True, metavar='KEY=VALUE',
              help='Change a protocol value, e.g. max_temperature=1400 or fallback=null (repeatable).')  # fmt: skip
@PYTHON_CODE_OPTION
@WALLTIME_OPTION
@DAEMON_OPTION
@JSON_OPTION
@decorators.with_dbenv()
def cmd_melt_quench(
    structure, model, trust_model_file, reaxff, force_field, control, engine, mliap_model, protocol, supercell,
    replicas, overrides, code_label, walltime, daemon, as_json,
):  # fmt: skip
    """Melt-quench STRUCTURE (a CIF/extxyz file or a StructureData PK) into glasses and analyse them.

    Examples: mofal melt-quench ZIF-4.cif --model 42 --daemon (the paper: 2x2x2, 1500 K, 50 ps plateau);
    mofal melt-quench ZnIm2.cif --reaxff --protocol smoke --supercell 1 1 1 --json
    """
    from .cmd_md import _load_model, _load_structure, reaxff_files

    if reaxff == bool(model):
        echo.echo_critical('give --model (MACE) or --reaxff (ReaxFF), one of them')
    code = load_code(code_label)
    structure_node = _load_structure(structure)
    options = {'max_wallclock_seconds': walltime} if walltime else None
    try:
        from aiida_mofal.workchains.melt_quench import MeltQuenchWorkChain

        common = {'protocol': protocol, 'overrides': parse_overrides(overrides), 'supercell': supercell,
                  'replicas': replicas, 'options': options}  # fmt: skip
        if reaxff:
            from aiida_mofal.calculations import reaxff as reaxff_nodes

            force_field, control = reaxff_files(force_field, control)
            builder = MeltQuenchWorkChain.get_builder_from_protocol(
                code, structure_node, force_field=reaxff_nodes.force_field(force_field),
                control=reaxff_nodes.control_file(control) if control else None, **common,
            )  # fmt: skip
        else:
            from aiida import orm

            exported = orm.SinglefileData(mliap_model) if mliap_model else None
            model_node = _load_model(model, trust_model_file)
            builder = MeltQuenchWorkChain.get_builder_from_protocol(
                code, structure_node, model_node, engine=engine, mliap_model=exported, **common
            )
    except (ValueError, FileNotFoundError) as exception:  # also ProtocolError
        echo.echo_critical(str(exception))
    results, node = launch(builder, daemon, as_json)
    if results is None:
        return
    glasses = {name: glass_summary(outputs) for name, outputs in sorted((results.get('glasses') or {}).items())}
    summary = {**process_summary(node), 'supercell': results['supercell'].pk if 'supercell' in results else None,
               'glasses': glasses}  # fmt: skip
    if as_json:
        echo_json(summary)
    else:
        for name, glass in glasses.items():
            click.echo(_headline(name, glass))
    if not node.is_finished_ok:
        echo.echo_critical(f'{node.process_label}<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
    if not as_json:
        echo.echo_success(f'{node.process_label}<{node.pk}> finished: {len(glasses)} glass(es)')
