"""``mofal eos``: equations of state and bulk moduli.

``mofal eos fit POINTS.csv`` fits E(V) points from anywhere (no profile needed). ``eos`` is a group whose first
argument, when it is not one of its subcommands, is taken as the structure of ``mofal eos run``: so
``mofal eos STRUCTURE --model PK --method ev`` and ``mofal eos run STRUCTURE ...`` are the same command once
``run`` is registered on this group (a structure labelled like a subcommand needs the explicit ``run``).
"""

from pathlib import Path

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import DAEMON_OPTION, JSON_OPTION, PYTHON_CODE_OPTION, TRUST_MODEL_OPTION, WALLTIME_OPTION, echo_json


class StructureOrSubcommandGroup(VerdiCommandGroup):
    """A group that hands an argument which is not one of its subcommands to its ``default_command``."""

    default_command = 'run'

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Prepend the default command when the first argument names none of the subcommands."""
        if (
            args
            and not args[0].startswith('-')
            and args[0] not in self.commands
            and self.default_command in self.commands
        ):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@cmd_root.group('eos', cls=StructureOrSubcommandGroup)
def cmd_eos():
    """Equations of state and bulk moduli: `mofal eos fit POINTS.csv`, or of a structure with a model."""


@cmd_eos.command('fit')
@click.argument('points', type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    '--form',
    type=click.Choice(['birch-murnaghan', 'vinet']),
    default='birch-murnaghan',
    show_default=True,
    help='Equation of state: Birch–Murnaghan 3rd order or Vinet.',
)
@click.option(
    '--allow-unbracketed', is_flag=True, help='Fit a grid that does not bracket the minimum anyway (flagged).'
)
@click.option('-o', '--output', type=click.Path(dir_okay=False, path_type=Path), help='Write the E–V plot (PNG).')
@JSON_OPTION
def cmd_eos_fit(points, form, allow_unbracketed, output, as_json):
    """Fit E(V) POINTS: two columns, volume (Å³) and energy (eV), comma- or space-separated, a header allowed.

    Prints V0, E0, B0 (GPa) and B0′ with their standard errors; a grid whose lowest point is at its edge does
    not bracket a minimum and is refused (or, with --allow-unbracketed, fitted and flagged).
    """
    import warnings

    from aiida_mofal.analysis.eos import fit_energy_volume, parse_energy_volume_points

    if output is not None and output.suffix.lower() != '.png':
        echo.echo_critical(f'--output {output}: the plot is a PNG; give a file name ending in .png')
    try:
        volumes, energies = parse_energy_volume_points(points.read_text(errors='replace'), source=str(points))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the flags are printed below and kept in the JSON
            fit = fit_energy_volume(volumes, energies, form=form, allow_unbracketed=allow_unbracketed)
    except ValueError as exception:
        echo.echo_critical(str(exception))
    record = fit.as_dict()
    if output is not None:
        from aiida_mofal.analysis.mechanics_plots import plot_energy_volume

        record['plot'] = str(plot_energy_volume(fit, output, title=f'{points.name}: {form}'))
    if as_json:
        echo_json(record)
        return
    rows = (
        ('V0', fit.v0, fit.v0_error, 'Å³'),
        ('E0', fit.e0, fit.e0_error, 'eV'),
        ('B0', fit.b0, fit.b0_error, 'GPa'),
        ("B0'", fit.b0_prime, fit.b0_prime_error, ''),
    )
    click.echo(f'{form} fit of {fit.volumes.size} points ({fit.volumes[0]:.6g}–{fit.volumes[-1]:.6g} Å³)')
    for name, value, error, unit in rows:
        click.echo(f'  {name:<4} {value:16.8g} ± {error:<10.2g} {unit}'.rstrip())
    click.echo(f'  rms residual {1000 * fit.rms_residual:.3g} meV')
    for note in fit.warnings:
        echo.echo_warning(note)
    if output is not None:
        echo.echo_success(f'plot written to {output}')


def _method_settings(pairs: tuple[str, ...], methods: tuple[str, ...]) -> dict:
    """Return ``--set`` pairs as settings per method: ``ev.points=7``, or ``points=7`` for each method with the key."""
    from aiida_mofal.analysis.eos_methods import METHOD_DEFAULTS

    from .utils import parse_overrides

    settings: dict = {method: {} for method in methods}
    overrides = parse_overrides(pairs)
    specific = {key: value for key, value in overrides.items() if key in methods and isinstance(value, dict)}
    for key, value in overrides.items():
        if key in specific:
            continue
        owners = [method for method in methods if key in METHOD_DEFAULTS[method]]
        if not owners:
            raise click.BadParameter(
                f'--set {key}: no setting of {", ".join(methods)} has this name; write METHOD.KEY=VALUE with a key '
                'of docs/guide/mechanics.md'
            )
        for method in owners:
            settings[method][key] = value
    for method, values in specific.items():  # METHOD.KEY wins over KEY, whatever the order on the command line
        settings[method].update(values)
    return {method: values for method, values in settings.items() if values}


def eos_summary(node) -> dict:
    """Return what ``--json`` prints of a finished ``mofal.eos``: B0 ± error and result PK per method, comparison."""
    summary = {'pk': node.pk, 'uuid': node.uuid, 'exit_status': node.exit_status, 'exit_message': node.exit_message,
               'methods': {}}  # fmt: skip
    for method in ('ev', 'pv', 'strain', 'fluctuations'):
        if method in node.outputs:
            result = node.outputs[method]
            keys = ('B0_GPa', 'B0_GPa_err', 'V0_A3', 'B0_prime', 'P_max_GPa', 'bracketed', 'warnings')
            summary['methods'][method] = {'pk': result.pk, **{k: result[k] for k in keys if k in result}}
    if 'comparison' in node.outputs:
        summary['comparison'] = node.outputs.comparison.get_dict()
    return summary


def write_plots(node, directory: Path) -> list[str]:
    """Draw the PNGs of a finished ``mofal.eos``: E–V with both fits, P–V with its fit and P_max, the V histogram."""
    import warnings

    from aiida_mofal.analysis import mechanics_plots
    from aiida_mofal.analysis.eos import fit_energy_volume
    from aiida_mofal.analysis.pressure_volume import fit_pressure_volume

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if 'ev' in node.outputs:
            ev = node.outputs.ev
            fits = [fit_energy_volume(ev['volumes_A3'], ev['energies_eV'], form=form, allow_unbracketed=True)
                    for form in ('birch-murnaghan', 'vinet')]  # fmt: skip
            title = f'E–V, {ev["num_atoms"]} atoms (mofal.eos <{node.pk}>)'
            written.append(mechanics_plots.plot_energy_volume(fits, directory / f'eos_{node.pk}_ev.png', title=title))
        if 'pv' in node.outputs:
            pv = node.outputs.pv
            fit = fit_pressure_volume(pv['volumes_A3'], pv['pressures_GPa'], volume_errors=pv['volumes_A3_err'])
            written.append(mechanics_plots.plot_pressure_volume(fit, directory / f'eos_{node.pk}_pv.png'))
        if 'fluctuations' in node.outputs:
            trajectory = node.outputs.fluctuations.creator.inputs.trajectory
            volumes = trajectory.get_thermo()['volume']
            path = directory / f'eos_{node.pk}_volume_histogram.png'
            bulk = node.outputs.fluctuations['B0_GPa']
            written.append(mechanics_plots.plot_volume_histogram(volumes, path, bulk_modulus=bulk))
    return [str(path) for path in written]


@cmd_eos.command('run')
@click.argument('structure')
@click.option('--model', 'model', required=True, help='MACE model: a mofal.mace_model PK/UUID or a .model file.')
@TRUST_MODEL_OPTION
@click.option(
    '--method',
    'methods',
    type=click.Choice(['ev', 'pv', 'strain', 'fluctuations']),
    multiple=True,
    default=('ev',),
    show_default=True,
    help='Method (repeat for several: their bulk moduli are compared).',
)
@click.option('--set', 'pairs', multiple=True, metavar='KEY=VALUE', help='A method setting, e.g. ev.points=7.')
@PYTHON_CODE_OPTION
@click.option('--engine', type=click.Choice(['ase', 'lammps-python']), default='ase', show_default=True)
@WALLTIME_OPTION
@click.option('--threads', type=click.IntRange(min=1), help='torch threads of each job.')
@click.option('--plots', type=click.Path(file_okay=False, path_type=Path), default=Path('.'), show_default=True,
              help='Directory for the PNG figures.')  # fmt: skip
@DAEMON_OPTION
@JSON_OPTION
@decorators.with_dbenv()
def cmd_eos_run(
    structure, model, trust_model_file, methods, pairs, code_label, engine, walltime, threads, plots, daemon, as_json
):
    """Bulk modulus of STRUCTURE (a file or a StructureData PK) with a MACE model: E–V, P–V, finite strain, NσT.

    Examples: mofal eos uio66.cif --model 42 --method ev --json; mofal eos cu.cif --model cu.model --method ev
    --method strain --set strain.temperature=50 --set strain.steps=4000
    """
    from aiida_mofal.workchains.eos import EquationOfStateWorkChain

    from .cmd_md import _load_model, _load_structure
    from .utils import launch, load_code

    try:
        settings = _method_settings(pairs, methods)
    except click.BadParameter as exception:
        echo.echo_critical(str(exception))
    code = load_code(code_label)
    options = {key: value for key, value in (('max_wallclock_seconds', walltime),) if value}
    if threads:
        options['resources'] = {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': threads}
    try:
        builder = EquationOfStateWorkChain.get_builder_for(
            code, _load_structure(structure), _load_model(model, trust_model_file), methods, settings, options, engine
        )
    except ValueError as exception:
        echo.echo_critical(str(exception))
    results, node = launch(builder, daemon, as_json)
    if results is None:
        return
    summary = eos_summary(node)
    summary['plots'] = write_plots(node, plots)
    if as_json:
        echo_json(summary)
    else:
        for method, record in summary['methods'].items():
            click.echo(f'{method:<13} B0 = {record["B0_GPa"]:.4g} ± {record["B0_GPa_err"]:.2g} GPa  '
                       f'V0 = {record["V0_A3"]:.6g} Å³  (Dict<{record["pk"]}>)')  # fmt: skip
            for note in record.get('warnings', []):
                echo.echo_warning(f'{method}: {note}')
        for pair in summary.get('comparison', {}).get('pairs', []):
            verdict = 'agree' if pair['agree'] else 'differ'
            click.echo(f'{" vs ".join(pair["methods"])}: {verdict} ({pair["sigma"]:.2g} σ)')
        for path in summary['plots']:
            echo.echo_success(f'plot written to {path}')
    if not node.is_finished_ok:
        echo.echo_error(f'{node.process_label}<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
        raise SystemExit(1)
