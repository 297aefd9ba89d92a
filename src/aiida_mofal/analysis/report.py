"""Plots of a campaign: learning curve, unknown fraction, parity, and structures coloured per atom.

Pure functions of arrays and records (matplotlib, Agg backend), so that the same figures come from a live
profile or an imported archive.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

__all__ = (
    'density_summary',
    'test_set_lines',
    'plot_bic',
    'plot_learning_curve',
    'plot_parity',
    'plot_structure_values',
    'plot_unknown_fraction',
    'report_figures',
    'status_table',
    'write_campaign_report',
    'write_index',
)

_COLUMNS = (
    ('cycle', 'cycle', '{}'),
    ('frames', 'frames_scanned', '{}'),
    ('unknown', 'unknown_fraction', '{:.4f}'),
    ('clusters', 'clusters_labelled', '{}'),
    ('failed', 'failures', '{}'),
    ('configs', 'training_configurations', '{}'),
    ('MAE_p95 meV/Å', 'force_mae_pk_mev_per_a', '{:.1f}'),
    ('ΔE_std meV/at', 'delta_e_std_mev_per_atom', '{:.2f}'),
    ('F RMSE meV/Å', 'force_rmse_mev_per_a', '{:.1f}'),
    ('wall s', 'wall_seconds', '{:.0f}'),
)


def status_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]] = _COLUMNS) -> str:
    """Format per-cycle rows (see ``mofal status``) as a fixed-width table; missing values print as ``-``.

    ``columns``: (title, row key, format) per column; the default is the cluster campaign's.
    """
    header = [title for title, _, _ in columns]
    lines = []
    for row in rows:
        cells = []
        for _, key, fmt in columns:
            value = row.get(key)
            cells.append('-' if value is None else fmt.format(value))
        lines.append(cells)
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ['  '.join(h.rjust(w) for h, w in zip(header, widths))]
    out += ['  '.join(c.rjust(w) for c, w in zip(line, widths)) for line in lines]
    return '\n'.join(out + test_set_lines(rows))


def test_set_lines(rows: Sequence[dict]) -> list[str]:
    """One line per cycle and extra test set (the campaign file's ``test_sets``): MAE_pk, ΔE_std, RMSE in meV."""

    def mev(value, fmt):
        return '-' if value is None else fmt.format(1000 * value)

    out = []
    for row in rows:
        for name, errors in (row.get('test_sets') or {}).items():
            out.append(
                f'test set {name}, cycle {row["cycle"]}: MAE_p{errors.get("percentile_k", 95)} '
                f'{mev(errors.get("force_mae_pk_ev_per_a"), "{:.1f}")} meV/Å, ΔE_std '
                f'{mev(errors.get("delta_e_std_ev_per_atom"), "{:.2f}")} meV/at, F RMSE '
                f'{mev(errors.get("force_rmse_ev_per_a"), "{:.1f}")} meV/Å'
            )
    return out


def density_summary(attributes: dict) -> str:
    """Per element: dimension, components, atoms, threshold, calibration and the BIC curve (one line each)."""
    lines = []
    for symbol in attributes['elements']:
        check = (attributes.get('calibration') or {}).get(symbol)
        calibration = (
            f'held-out flagged {100 * check["flagged_fraction"]:.2f}% (nominal {100 * check["nominal_fraction"]:.2f}%, '
            f'{check["held_out_atoms"]} atoms by {check["held_out_by"]})'
            if check
            else 'no calibration check'
        )
        dimension = (attributes.get('dimensions') or {}).get(symbol, attributes['feature_size'])
        lines.append(
            f'  {symbol:<3} {dimension}-D, {attributes["n_components"][symbol]} components, '
            f'{attributes["training_atoms"][symbol]} atoms, threshold {attributes["thresholds"][symbol]:.3f}; '
            + calibration
        )
        bic = (attributes.get('bic') or {}).get(symbol) or {}
        if bic:
            curve = ' '.join(f'{m}:{float(v):.4g}' for m, v in sorted(bic.items(), key=lambda item: int(item[0])))
            lines.append(f'      BIC {curve}')
    return '\n'.join(lines)


def _figure():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_learning_curve(rows: Sequence[dict], path: str | Path) -> Path:
    """Plot force MAE_p95 and RMSE (meV/Å) and ΔE_std (meV/atom) on the test set, per cycle."""
    plt = _figure()
    cycles = [row['cycle'] for row in rows]
    fig, left = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    left.plot(cycles, [row.get('force_mae_pk_mev_per_a') for row in rows], 'o-', label='force MAE$_{p95}$')
    left.plot(cycles, [row.get('force_rmse_mev_per_a') for row in rows], 's--', label='force RMSE')
    left.set_xlabel('cycle')
    left.set_ylabel('force error (meV/Å)')
    right = left.twinx()
    right.plot(cycles, [row.get('delta_e_std_mev_per_atom') for row in rows], 'd:', color='tab:green')
    right.set_ylabel('ΔE$_{std}$ (meV/atom)', color='tab:green')
    left.legend(loc='upper right', frameon=False)
    left.set_xticks(cycles)
    evaluated = {row.get('evaluated_on', 'test') for row in rows}
    left.set_title(f'Learning curve ({" / ".join(sorted(evaluated))} set)')
    return _save(plt, fig, path)


def plot_unknown_fraction(rows: Sequence[dict], path: str | Path) -> Path:
    """Plot the fraction of scanned atoms the density model calls unknown, per cycle."""
    plt = _figure()
    scanned = [row for row in rows if row.get('unknown_fraction') is not None]
    fig, axis = plt.subplots(figsize=(5.0, 3.5), dpi=120)
    axis.bar([row['cycle'] for row in scanned], [row['unknown_fraction'] for row in scanned], color='tab:red')
    if any(row['unknown_fraction'] > 0 for row in scanned):
        axis.set_yscale('log')
    axis.set_xlabel('cycle')
    axis.set_ylabel('unknown atoms / scanned atoms')
    axis.set_title('Unknown fraction in the explored frames')
    return _save(plt, fig, path)


def plot_parity(errors: dict[str, np.ndarray], path: str | Path, title: str = 'Test set') -> Path:
    """Plot parity of per-atom energies (eV/atom) and force components (eV/Å) from evaluation error arrays."""
    plt = _figure()
    fig, (energy, force) = plt.subplots(1, 2, figsize=(8.0, 3.8), dpi=120)
    natoms = errors['natoms']
    e_ref, e_pred = errors['energy_ref'] / natoms, errors['energy_pred'] / natoms
    energy.scatter(e_ref, e_pred, s=12)
    f_ref, f_pred = errors['forces_ref'].ravel(), errors['forces_pred'].ravel()
    force.scatter(f_ref, f_pred, s=3, alpha=0.5)
    for axis, (ref, pred), unit in ((energy, (e_ref, e_pred), 'eV/atom'), (force, (f_ref, f_pred), 'eV/Å')):
        finite = np.isfinite(ref) & np.isfinite(pred)
        if finite.any():
            lo, hi = min(ref[finite].min(), pred[finite].min()), max(ref[finite].max(), pred[finite].max())
            axis.plot([lo, hi], [lo, hi], 'k--', lw=0.8)
        axis.set_xlabel(f'reference ({unit})')
        axis.set_ylabel(f'MACE ({unit})')
    energy.set_title(f'{title}: energy')
    force.set_title(f'{title}: force components')
    return _save(plt, fig, path)


def plot_structure_values(atoms: Atoms, values: np.ndarray, path: str | Path, label: str, title: str) -> Path:
    """Plot ``atoms`` projected on the x–y plane, every atom coloured by ``values`` (uncertainty, error, ...)."""
    plt = _figure()
    values = np.asarray(values, dtype=float)
    shown = np.where(
        np.isfinite(values), values, np.nanmax(values[np.isfinite(values)]) if np.isfinite(values).any() else 0
    )
    order = np.argsort(atoms.positions[:, 2])
    fig, axis = plt.subplots(figsize=(5.0, 4.5), dpi=120)
    sizes = 12 + 20 * (atoms.numbers[order] > 1)
    scatter = axis.scatter(
        atoms.positions[order, 0], atoms.positions[order, 1], c=shown[order], s=sizes, cmap='viridis', edgecolors='none'
    )
    fig.colorbar(scatter, ax=axis, label=label)
    axis.set_aspect('equal')
    axis.set_xlabel('x (Å)')
    axis.set_ylabel('y (Å)')
    axis.set_title(title)
    return _save(plt, fig, path)


def plot_bic(bic: dict[str, dict], path: str | Path) -> Path:
    """Plot each element's BIC against the number of components (relative to its minimum; marked: the pick)."""
    plt = _figure()
    fig, axis = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for symbol, curve in sorted(bic.items()):
        if not curve:
            continue
        m = np.array(sorted(int(k) for k in curve))
        values = np.array([float(curve[str(k)] if str(k) in curve else curve[k]) for k in m])
        (line,) = axis.plot(m, values - values.min(), 'o-', label=symbol)
        best = int(np.argmin(values))
        axis.plot([m[best]], [0.0], 's', color=line.get_color(), markersize=10, fillstyle='none')
    axis.set_xlabel('components')
    axis.set_ylabel('BIC − min BIC')
    axis.set_yscale('symlog', linthresh=10.0)
    axis.set_title('Density model: BIC per element (square: chosen)')
    axis.legend(fontsize=8)
    return _save(plt, fig, path)


def write_campaign_report(
    output: str | Path,
    *,
    title: str,
    state: str,
    rows: Sequence[dict],
    errors: dict[str, np.ndarray] | None = None,
    target: Atoms | None = None,
    target_uncertainty: np.ndarray | None = None,
    first_test_structure: Atoms | None = None,
    density: dict | None = None,
    test_set: str | None = None,
) -> dict:
    """Write a campaign's figures and ``index.md`` (the table and the figures) to ``output``.

    :param rows: the per-cycle rows (``aiida_mofal.campaign.queries.campaign_rows``).
    :param errors: the last evaluation's error arrays: a parity plot, and with ``first_test_structure`` the
        per-atom force error of the first evaluated structure.
    :param target_uncertainty: per-atom uncertainty of ``target`` under the last density model.
    :param density: the attributes of the last density model: its BIC curves (a figure) and calibration.
    :param test_set: what the errors are measured on (``campaign.queries.test_set_summary``), a line in the text.
    :returns: ``summary`` (path of ``index.md``) and ``figures`` (name → path).
    """
    output, figures = report_figures(
        output, rows, errors, learning_curve=plot_learning_curve, unknown_fraction=plot_unknown_fraction
    )
    if target is not None and target_uncertainty is not None:
        figures['uncertainty'] = plot_structure_values(
            target, target_uncertainty, output / 'target_uncertainty.png', '−log likelihood', 'Target: uncertainty'
        )
    if errors is not None and first_test_structure is not None:
        mask = errors['structure_index'] == 0
        per_atom = np.linalg.norm(errors['forces_pred'][mask] - errors['forces_ref'][mask], axis=1)
        figures['error'] = plot_structure_values(
            first_test_structure,
            1000 * per_atom,
            output / 'test_force_error.png',
            '|ΔF| (meV/Å)',
            'Test structure: force error',
        )
    if density is not None and density.get('bic'):
        figures['density_bic'] = plot_bic(density['bic'], output / 'density_bic.png')
    extra = [f'{test_set[0].upper()}{test_set[1:]}.', ''] if test_set else []
    if density is not None:
        extra += ['Last density model (BIC curve and held-out calibration per element):', '', '```']
        extra += [density_summary(density), '```', '']
    return write_index(output, title, state, status_table(rows), figures, extra)


def report_figures(output: str | Path, rows: Sequence[dict], errors: dict | None, **plots) -> tuple[Path, dict]:
    """Make ``output`` and draw the figures every campaign report starts with, in one place.

    ``plots``: name → function of the rows and a path, drawn to ``<name>.png``; then the last model's parity plot
    when ``errors`` are given.

    :returns: the output folder and the figures (name → path), in the order they appear in ``index.md``.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    figures = {name: plot(rows, output / f'{name}.png') for name, plot in plots.items()}
    if errors is not None:
        figures['parity'] = plot_parity(errors, output / 'parity.png', title='Test set, last model')
    return output, figures


def write_index(
    output: Path, title: str, state: str, table: str, figures: dict[str, Path], extra: Sequence[str] = ()
) -> dict:
    """Write ``index.md`` (title, state, the status table, ``extra`` lines, the figures) and say what was written.

    One writer for the campaign and the temperature-campaign reports, so that both read the same way.
    :returns: ``summary`` (path of ``index.md``) and ``figures`` (name → path), as strings.
    """
    summary = Path(output) / 'index.md'
    lines = [f'# {title}', '', f'State: {state}', '', '```', table, '```', '', *extra]
    lines += [f'![{name}]({path.name})' for name, path in figures.items()]
    summary.write_text('\n'.join(lines) + '\n')
    return {'summary': str(summary), 'figures': {name: str(path) for name, path in figures.items()}}
