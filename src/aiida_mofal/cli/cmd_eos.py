"""``mofal eos``: equations of state and bulk moduli.

``mofal eos fit POINTS.csv`` fits E(V) points from anywhere (no profile needed). ``eos`` is a group whose first
argument, when it is not one of its subcommands, is taken as the structure of ``mofal eos run``: so
``mofal eos STRUCTURE --model PK --method ev`` and ``mofal eos run STRUCTURE ...`` are the same command once
``run`` is registered on this group (a structure labelled like a subcommand needs the explicit ``run``).
"""

from pathlib import Path

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.utils import echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json


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
