"""``mofal evaluate``, ``mofal uncertainty`` and ``mofal density``: error metrics and feature-space density."""

import warnings
from pathlib import Path

import click
from aiida.cmdline.params import types
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json

MODEL = click.argument('model', type=types.DataParamType(sub_classes=('aiida.data:mofal.mace_model',)))
DATASET = click.argument('dataset', type=types.DataParamType(sub_classes=('aiida.data:mofal.dataset',)))
DENSITY = click.argument('density', type=types.DataParamType(sub_classes=('aiida.data:mofal.density_model',)))

# (label, key, factor, unit) of the text table; the JSON output keeps eV units as in the keys
_ROWS = (
    ('energy MAE', 'energy_mae_ev_per_atom', 1000.0, 'meV/atom'),
    ('energy RMSE', 'energy_rmse_ev_per_atom', 1000.0, 'meV/atom'),
    ('ΔE_avg', 'delta_e_avg_ev_per_atom', 1000.0, 'meV/atom'),
    ('ΔE_std', 'delta_e_std_ev_per_atom', 1000.0, 'meV/atom'),
    ('force MAE', 'force_mae_ev_per_a', 1000.0, 'meV/Å'),
    ('force RMSE', 'force_rmse_ev_per_a', 1000.0, 'meV/Å'),
    ('force MAE_p{k}', 'force_mae_p{k}_ev_per_a', 1000.0, 'meV/Å'),
    ('force max', 'force_max_ev_per_a', 1000.0, 'meV/Å'),
    ('stress MAE', 'stress_mae_gpa', 1.0, 'GPa'),
    ('stress RMSE', 'stress_rmse_gpa', 1.0, 'GPa'),
)


def _print_metrics(metrics: dict, indent: str = '') -> None:
    k = metrics['percentile_k']
    key_k = f'{k:g}'.replace('.', '_')
    for label, key, factor, unit in _ROWS:
        value = metrics.get(key.format(k=key_k))
        if value is not None:
            click.echo(f'{indent}{label.format(k=f"{k:g}"):<16} {value * factor:12.3f} {unit}')


@cmd_root.command('evaluate')
@MODEL
@DATASET
@click.option('--k', 'percentile', type=click.FloatRange(0, 100), default=95.0, show_default=True, help='k of MAE_pk.')
@JSON_OPTION
@decorators.with_dbenv()
def cmd_evaluate(model, dataset, percentile, as_json):
    """Error metrics of MODEL on the labelled DATASET (a stored `mofal.evaluate_model` calculation).

    Energies per atom, forces per Cartesian component, MAE_pk, ΔE_avg/ΔE_std, stresses; per element and
    per config_type in the JSON. Prints meV; the JSON keeps eV units as named in its keys.
    """
    from aiida import orm

    from aiida_mofal.calculations.mace_evaluate import check_evaluation_inputs, evaluate_model

    try:
        check_evaluation_inputs(model, dataset)
    except ValueError as exception:
        echo.echo_critical(str(exception))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch/e3nn chatter about pickled model files
        results, node = evaluate_model.run_get_node(model, dataset, percentile=orm.Float(percentile))
    if not node.is_finished_ok:
        echo.echo_critical(f'evaluation {node.pk} failed: {node.exit_message or node.process_state}')
    metrics = results['metrics'].get_dict()
    if as_json:
        echo_json(
            {
                'model': model.uuid,
                'dataset': dataset.uuid,
                'calculation': node.pk,
                'errors': results['errors'].pk,
                'metrics': metrics,
            }
        )
        return
    counts = f'{metrics["structures"]} structures, {metrics["atoms"]} atoms'
    click.echo(f'model {model.pk} on data set {dataset.pk}: {counts}')
    _print_metrics(metrics)
    for symbol, entry in metrics['per_element'].items():
        if 'force_mae_ev_per_a' in entry:
            click.echo(
                f'  {symbol:<3} force MAE {entry["force_mae_ev_per_a"] * 1000:9.3f}  RMSE '
                f'{entry["force_rmse_ev_per_a"] * 1000:9.3f} meV/Å  ({entry["atoms"]} atoms)'
            )
    for name, entry in metrics['per_config_type'].items():
        click.echo(f'{name} ({entry["structures"]} structures):')
        _print_metrics({**entry, 'percentile_k': metrics['percentile_k']}, indent='  ')
    echo.echo_success(f'stored as calculation {node.pk} (per-atom errors: ArrayData {results["errors"].pk})')


def _read_structures(path: Path) -> list:
    import ase.io
    from ase import Atoms

    try:
        frames = ase.io.read(str(path), index=':')
    except Exception as exception:
        echo.echo_critical(f'{path}: cannot read a structure ({exception}); give an extxyz or CIF file.')
    clean = []
    for atoms in frames:  # keep geometry only: CIF metadata (space groups...) cannot go to extxyz
        clean.append(Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc))
    return clean


@cmd_root.command('uncertainty')
@MODEL
@DENSITY
@click.argument('structure', type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    '-o',
    '--output',
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write extxyz with per-atom arrays mofal_uncertainty and mofal_unknown.',
)
@JSON_OPTION
@decorators.with_dbenv()
def cmd_uncertainty(model, density, structure, output, as_json):
    """Per-atom uncertainty of the atoms of STRUCTURE (extxyz/CIF, all frames) under DENSITY.

    Uncertainty is the negative log-likelihood of the atom's last-layer MODEL features under its element's
    Gaussian mixture; `unknown` marks atoms below their element's threshold. An element absent from the
    training set is infinitely uncertain (inf in the extxyz, null in the JSON).
    """
    import ase.io

    from aiida_mofal.mlp.metrics import json_safe

    frames = _read_structures(structure)
    try:
        density.check_model(model)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            results = density.score(frames, model)
    except ValueError as exception:
        echo.echo_critical(str(exception))
    if output is not None:
        for atoms, result in zip(frames, results):
            atoms.arrays['mofal_uncertainty'] = result['uncertainty']
            atoms.arrays['mofal_unknown'] = result['unknown'].astype(bool)
        ase.io.write(str(output), frames, format='extxyz')
    summary = density.summary_of(results)
    if as_json:
        echo_json(
            json_safe(
                {
                    'model': model.uuid,
                    'density_model': density.uuid,
                    **summary,
                    'thresholds': density.thresholds,
                    'structures': [
                        {
                            'symbols': atoms.get_chemical_symbols(),
                            'uncertainty': result['uncertainty'].tolist(),
                            'unknown': result['unknown'].tolist(),
                        }
                        for atoms, result in zip(frames, results)
                    ],
                    'output': str(output) if output else None,
                }
            )
        )
        return
    click.echo(f'{"frame":>5} {"atom":>6} {"el":<3} {"uncertainty":>12} unknown')
    for frame, (atoms, result) in enumerate(zip(frames, results)):
        for index, (symbol, value, unknown) in enumerate(
            zip(atoms.get_chemical_symbols(), result['uncertainty'], result['unknown'])
        ):
            click.echo(f'{frame:>5} {index:>6} {symbol:<3} {value:12.3f} {"yes" if unknown else ""}')
    fraction = summary['unknown_atoms'] / max(summary['atoms'], 1)
    click.echo(f'{summary["unknown_atoms"]} of {summary["atoms"]} atoms unknown ({100 * fraction:.1f}%)')
    if output is not None:
        echo.echo_success(f'wrote {output}')


@cmd_root.group('density')
def cmd_density():
    """Density models of MACE features (`mofal.density_model` nodes)."""


def _setting(name: str, kind: click.ParamType, default, help_text: str, *dest: str):
    """Return a density-fit option: a checked range, its default shown in ``--help``."""
    return click.option(name, *dest, type=kind, default=default, show_default=True, help=help_text)


@cmd_density.command('fit')
@MODEL
@DATASET
@click.option('--max-components', type=click.IntRange(min=1), default=8, show_default=True, help='BIC scan 1..N.')
@_setting('--pca', click.IntRange(min=0), 16,
          'PCA per element to this dimension when the features have more; 0: no PCA.', 'pca_components')  # fmt: skip
@_setting('--reg-covar', click.FloatRange(min=0, min_open=True), 1e-2,
          'Covariance regularisation, relative to the mean feature variance.')  # fmt: skip
@_setting('--calibration-fraction', click.FloatRange(0, 0.5), 0.2,
          'Held-out part of the configurations for the calibration check; 0: no check.')  # fmt: skip
@_setting('--threshold-percentile', click.FloatRange(0, 100), 1.0,
          'Unknown below this percentile of the training log-likelihoods.')  # fmt: skip
@click.option('--seed', type=int, default=0, show_default=True)
@click.option(
    '--max-atoms-per-element', type=click.IntRange(min=1), help='Fit each mixture on a random subsample of this size.'
)
@JSON_OPTION
@decorators.with_dbenv()
def cmd_density_fit(
    model,
    dataset,
    max_components,
    pca_components,
    reg_covar,
    calibration_fraction,
    threshold_percentile,
    seed,
    max_atoms_per_element,
    as_json,
):
    """Fit per-element Gaussian mixtures on MODEL's features of DATASET (its training set); print the node.

    Prints per element the components chosen, the BIC curve they were chosen from, and the calibration
    check: the fraction of held-out training configurations' atoms flagged unknown against the nominal.
    """
    from aiida import orm

    from aiida_mofal.calculations.density import check_density_inputs, fit_density_model

    settings = {
        'max_components': max_components,
        'pca_components': pca_components or None,
        'reg_covar': reg_covar,
        'calibration_fraction': calibration_fraction,
        'threshold_percentile': threshold_percentile,
        'seed': seed,
        'max_atoms_per_element': max_atoms_per_element,
    }
    try:
        check_density_inputs(model, dataset, settings)
    except ValueError as exception:
        echo.echo_critical(str(exception))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        node = fit_density_model(model, dataset, orm.Dict(settings))
    attributes = node.base.attributes.all
    if as_json:
        echo_json({'pk': node.pk, 'uuid': node.uuid, **{k: attributes[k] for k in sorted(attributes)}})
        return
    echo.echo_success(f'stored density model {node.pk}')
    from aiida_mofal.analysis.report import density_summary

    click.echo(density_summary(attributes))
    if attributes.get('calibrated') is False:
        echo.echo_warning(
            'held-out atoms are flagged at more than 3x the nominal fraction: the mixtures over-fit; try a smaller '
            '--pca, a larger --reg-covar or more training data.'
        )
