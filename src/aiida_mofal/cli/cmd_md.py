"""``mofal md`` (run MD with a MACE model) and ``mofal traj`` (inspect and export trajectories)."""

from __future__ import annotations

from pathlib import Path

import click
from aiida.cmdline.params import arguments, types
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import (
    DAEMON_OPTION,
    JSON_OPTION,
    PYTHON_CODE_OPTION,
    TRUST_MODEL_OPTION,
    WALLTIME_OPTION,
    echo_json,
    launch,
    load_code,
)

ENGINE_CHOICES = ('ase', 'lammps-python', 'lammps-mliap')


def _load_structure(value: str):
    """Return a StructureData from a file ASE can read, or from a node identifier (PK, UUID, label)."""
    from aiida import orm

    path = Path(value)
    if path.is_file():
        from ase.io import read

        from aiida_mofal.mlp.configurations import ConfigurationError, validate_configuration
        from aiida_mofal.structures.io import _refuse_partial_occupancy

        try:
            atoms = read(path)
        except Exception as exception:
            echo.echo_critical(f'{path}: ASE cannot read this structure ({exception}).')
        try:  # as `mofal label` does: no partial occupancy, NaN, overlapping atoms or absurd cell before MD
            _refuse_partial_occupancy(atoms, str(path))
            probe = atoms.copy()
            probe.info = {'charge': 0, 'multiplicity': 1 + int(probe.numbers.sum()) % 2}
            probe.arrays = {key: probe.arrays[key] for key in ('numbers', 'positions')}
            validate_configuration(probe, str(path))
        except (ValueError, ConfigurationError) as error:
            echo.echo_critical(str(error))
        return orm.StructureData(ase=atoms)
    try:
        node = orm.load_node(value)
    except Exception:
        echo.echo_critical(f'{value!r} is neither a structure file nor a stored node; give a CIF/extxyz path or a PK.')
    if not isinstance(node, orm.StructureData):
        echo.echo_critical(f'node {value} is a {type(node).__name__}, not a StructureData.')
    return node


def _load_model(value: str, trusted: bool = False):
    """Return a MaceModelData from a node identifier, a stored node with the same file, or a new (unstored) node.

    A file must be a weights-only model file (what aiida-mofal stores), or a MACE ``.model`` pickle with
    ``--trust-model-file``: unpickling runs any code the file holds (docs/guide/security.md).
    """
    from aiida import orm

    from aiida_mofal.data.mace_model import MaceModelData

    path = Path(value)
    if path.is_file():
        import hashlib

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        query = orm.QueryBuilder().append(
            MaceModelData, filters={'or': [{'attributes.sha256': digest}, {'attributes.source_sha256': digest}]}
        )
        existing = query.first(flat=True)
        if existing is not None:  # the same file was stored before: reuse it, so runs share one model node
            return existing
        try:
            return MaceModelData(path, trusted=trusted)  # stored with the run, so a refused run leaves no node behind
        except ValueError as exception:
            echo.echo_critical(str(exception))
    try:
        node = orm.load_node(value)
    except Exception:
        echo.echo_critical(f'{value!r} is neither a MACE model file nor a stored node; give a .model path or a PK.')
    if not isinstance(node, MaceModelData):
        echo.echo_critical(f'node {value} is a {type(node).__name__}, not a mofal.mace_model.')
    return node


def _parse_target(text: str | None, what: str):
    """Return a hold (number) or a ramp ``[start, end]`` from ``300`` or ``300:1500``."""
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(':')]
    except ValueError:
        raise click.BadParameter(f'{what} must be a number or START:END, got {text!r}') from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values
    raise click.BadParameter(f'{what} must be a number or START:END, got {text!r}')


def build_overrides(protocol: str | None, ensemble, temperature, pressure, steps, timestep, dump_every, seed) -> dict:
    """Return MD protocol overrides from the command-line options (one schedule stage when any target is given)."""
    from aiida_mofal.md.protocol import load_md_settings

    overrides: dict = {}
    for key, value in (('ensemble', ensemble), ('timestep', timestep), ('dump_every', dump_every), ('seed', seed)):
        if value is not None:
            overrides[key] = value
    if temperature is not None or pressure is not None or steps is not None:
        base = load_md_settings(protocol, {k: v for k, v in overrides.items() if k == 'ensemble'})
        first = base['schedule'][0]
        stage = {'steps': steps if steps is not None else first['steps']}
        stage['temperature'] = temperature if temperature is not None else first['temperature']
        if base['ensemble'] == 'npt' or pressure is not None:
            stage['pressure'] = pressure if pressure is not None else (first['pressure'] or 0.0)
        if stage['temperature'] is None:
            stage.pop('temperature')
        overrides['schedule'] = [stage]
    return overrides


def summary_of(node) -> dict:
    """Return what ``--json`` prints for a finished MD process: PK, state and mean/spread of T, P, V."""
    trajectory = node.outputs.trajectory if 'trajectory' in node.outputs else None
    summary = {
        'pk': node.pk,
        'uuid': node.uuid,
        'process_state': node.process_state.value if node.process_state else None,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'trajectory': trajectory.pk if trajectory is not None else None,
    }
    if trajectory is not None:
        summary.update(
            {
                'num_frames': trajectory.num_frames,
                'num_atoms': trajectory.num_atoms,
                'engine': trajectory.engine,
                'completed_steps': trajectory.base.attributes.get('completed_steps'),
                **trajectory.base.attributes.get('summary'),
            }
        )
    return summary


@cmd_root.command('md')
@click.argument('structure')
@click.option('--model', 'model', help='MACE model: a mofal.mace_model PK/UUID or a .model file (not with --reaxff).')
@TRUST_MODEL_OPTION
@click.option('--engine', type=click.Choice(ENGINE_CHOICES), default='ase', show_default=True, help='MACE MD engine.')
@click.option('--reaxff', is_flag=True, help='Run ReaxFF (LAMMPS, QEq) instead of MACE: the ReaxffMdWorkChain.')
@click.option('--force-field', type=click.Path(exists=True, dir_okay=False), help='ReaxFF ffield file (--reaxff).')
@click.option('--control', type=click.Path(exists=True, dir_okay=False), help='ReaxFF control file (--reaxff).')
@click.option('--minimize', is_flag=True, help='--reaxff: minimise at fixed cell before the MD.')
@click.option('--protocol', help="Protocol of protocols/md.yaml [default: explore; nvt with --reaxff, or 'minimize'].")
@click.option('--ensemble', type=click.Choice(('nve', 'nvt', 'npt')), help='Override the protocol ensemble.')
@click.option('--temperature', help='Target temperature in K: 300, or a ramp START:END.')
@click.option('--pressure', help='Target pressure in GPa (npt): 0, or a ramp START:END.')
@click.option('--steps', type=click.IntRange(min=1), help='Number of MD steps (one schedule stage).')
@click.option('--timestep', type=click.FloatRange(min=0, min_open=True), help='Timestep in fs.')
@click.option('--dump-every', type=click.IntRange(min=1), help='Store a frame every N steps.')
@click.option('--seed', type=click.IntRange(min=0), help='Seed of the initial velocities (and Langevin).')
@PYTHON_CODE_OPTION
@WALLTIME_OPTION
@DAEMON_OPTION
@JSON_OPTION
@decorators.with_dbenv()
def cmd_md(
    structure, model, trust_model_file, engine, reaxff, force_field, control, minimize, protocol, ensemble, temperature,
    pressure, steps, timestep, dump_every, seed, code_label, walltime, daemon, as_json,
):  # fmt: skip
    """Run MD of STRUCTURE (a file or a StructureData PK) with a MACE model or ReaxFF, restarting on failures.

    Examples: mofal md cell.cif --model 42 --engine lammps-python --ensemble npt --temperature 300 --pressure 0
    --steps 1000 --json; mofal md zif4.cif --reaxff --protocol nvt --steps 2000 --json (the ZIF force field of
    tests/data_files/forcefields when --force-field is not given, in a checkout)
    """
    if reaxff == bool(model):
        echo.echo_critical('give --model (MACE) or --reaxff (ReaxFF), one of them')
    protocol = protocol or ('nvt' if reaxff else 'explore')
    try:
        target = (_parse_target(temperature, '--temperature'), _parse_target(pressure, '--pressure'))
        overrides = {}
        if protocol != 'minimize':
            overrides = build_overrides(protocol, ensemble, *target, steps, timestep, dump_every, seed)
    except (ValueError, click.BadParameter) as exception:
        echo.echo_critical(str(exception))
    code = load_code(code_label)
    structure_node = _load_structure(structure)
    options = {'max_wallclock_seconds': walltime} if walltime else None
    try:
        if reaxff:
            builder = _reaxff_builder(code, structure_node, protocol, overrides, options, force_field, control,
                                      minimize)  # fmt: skip
        else:
            from aiida_mofal.workchains.md import MdBaseWorkChain

            builder = MdBaseWorkChain.get_builder_from_protocol(
                code, structure_node, _load_model(model, trust_model_file), protocol=protocol, overrides=overrides,
                engine=engine, options=options,
            )  # fmt: skip
    except (ValueError, FileNotFoundError) as exception:
        echo.echo_critical(str(exception))
    results, node = launch(builder, daemon, as_json)
    if results is None:
        return
    summary = summary_of(node)
    label = f'{node.process_label}<{node.pk}>'
    if as_json:
        echo_json(summary)
    elif node.is_finished_ok:
        echo.echo_success(f'{label} finished: trajectory {summary["trajectory"]}')
        _echo_table(summary)
    else:
        echo.echo_error(f'{label} failed [{node.exit_status}]: {node.exit_message}')
    if not node.is_finished_ok:
        raise SystemExit(1)


def reaxff_files(force_field, control) -> tuple:
    """Return the ReaxFF (ffield, control) paths; without --force-field, the ZIF force field shipped in a checkout."""
    if force_field is None:
        shipped = Path(__file__).resolve().parents[3] / 'tests' / 'data_files' / 'forcefields'
        if not (shipped / 'ffield_ZnN_2016.reax').is_file():
            raise ValueError('--reaxff needs --force-field FILE (a LAMMPS ReaxFF ffield)')
        force_field = shipped / 'ffield_ZnN_2016.reax'
        control = control or shipped / 'lmp_control.reax'
    return force_field, control


def _reaxff_builder(code, structure, protocol, overrides, options, force_field, control, minimize):
    """Return the ReaxffMdWorkChain builder; without --force-field, the ZIF force field shipped in a checkout."""
    from aiida_mofal.workchains.reaxff import ReaxffMdWorkChain

    force_field, control = reaxff_files(force_field, control)
    return ReaxffMdWorkChain.get_builder_from_protocol(
        code, structure, protocol=protocol, overrides=overrides or None, options=options, force_field=force_field,
        control=control, minimize=minimize or None,
    )  # fmt: skip


def _echo_table(summary: dict) -> None:
    for key, value in summary.items():
        if isinstance(value, dict) and 'mean' in value:
            value = f'{value["mean"]:.4g} ± {value["std"]:.2g}'
        click.echo(f'{key:<20} {value}')


@cmd_root.group('traj')
def cmd_traj():
    """MD trajectories (`mofal.trajectory` nodes)."""


TRAJECTORY = arguments.DATUM(type=types.DataParamType(sub_classes=('aiida.data:mofal.trajectory',)))


def _trajectory_summary(node) -> dict:
    attributes = node.base.attributes.all
    keys = ('num_frames', 'num_atoms', 'elements', 'engine', 'ensemble', 'timestep', 'completed_steps', 'status')
    summary = {'pk': node.pk, 'uuid': node.uuid, **{key: attributes.get(key) for key in keys}}
    summary['last_time_fs'] = attributes.get('last_time')
    summary.update(attributes.get('summary', {}))
    return summary


@cmd_traj.command('show')
@TRAJECTORY
@JSON_OPTION
def cmd_traj_show(datum, as_json):
    """Show what a trajectory holds: frames, atoms, engine, and mean ± spread of T, P, V."""
    summary = _trajectory_summary(datum)
    if as_json:
        echo_json(summary)
    else:
        _echo_table(summary)


@cmd_traj.command('export')
@TRAJECTORY
@click.argument('output', type=click.Path(dir_okay=False, path_type=Path))
@click.option('--every', type=click.IntRange(min=1), default=1, show_default=True, help='Write every N-th frame.')
@click.option('-f', '--force', is_flag=True, help='Overwrite OUTPUT if it exists.')
@JSON_OPTION
def cmd_traj_export(datum, output, every, force, as_json):
    """Write frames to OUTPUT as extxyz with MACE's REF_* keys (energy, forces, stress)."""
    if output.exists() and not force:
        echo.echo_critical(f'{output} exists; use --force to overwrite it.')
    datum.export(output, every=every)
    count = len(range(0, datum.num_frames, every))
    if as_json:
        echo_json({'pk': datum.pk, 'output': str(output.resolve()), 'frames': count})
    else:
        echo.echo_success(f'wrote {count} frames to {output}')
