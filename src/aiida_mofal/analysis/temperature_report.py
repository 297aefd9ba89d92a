"""Table and plots of a temperature campaign: errors against temperature, and the CBAD occupancy per family.

Pure functions of the step records (``aiida_mofal.campaign.queries.campaign_rows``), so that the same figures come
from a live profile or an imported archive. Step 0 (the perturbations) is drawn at T = 0 K, the final step of
random configurations (``final: true``) half a temperature step above the last temperature.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .report import _figure, _save, report_figures, status_table, write_index

__all__ = ('COLUMNS', 'plot_occupancy_growth', 'plot_temperature_learning_curve', 'temperature_status_table',
           'write_temperature_report')  # fmt: skip

#: the columns of ``mofal status`` for a temperature campaign: (title, row key, format)
COLUMNS = (
    ('step', 'step', '{}'),
    ('T K', 'temperature_text', '{}'),
    ('runs', 'runs', '{}'),
    ('frames', 'frames_seen', '{}'),
    ('accepted', 'accepted', '{}'),
    ('failed', 'failures', '{}'),
    ('configs', 'training_configurations', '{}'),
    ('E RMSE meV/at', 'energy_rmse_mev_per_atom', '{:.2f}'),
    ('F RMSE meV/Å', 'force_rmse_mev_per_a', '{:.1f}'),
    ('S RMSE GPa', 'stress_rmse_gpa', '{:.3f}'),
    ('MAE_p95 meV/Å', 'force_mae_pk_mev_per_a', '{:.1f}'),
    ('wall s', 'wall_seconds', '{:.0f}'),
)

_FAMILIES = ('cell_length', 'cell_angle', 'bond', 'angle', 'dihedral')


def _temperature_text(row: dict) -> str | None:
    if row.get('final'):
        return 'random'
    return None if row.get('temperature_k') is None else f'{row["temperature_k"]:.0f}'


def temperature_status_table(rows: Sequence[dict]) -> str:
    """Per-step table of a temperature campaign (``mofal status``); missing values print as ``-``.

    The final step of random configurations shows ``random`` in the T column.
    """
    return status_table([{**row, 'temperature_text': _temperature_text(row)} for row in rows], COLUMNS)


def _temperatures(rows: Sequence[dict]) -> list[float]:
    """Return the x of each row: T_k; 0 for step 0; the final random step half a step above the last temperature."""
    values = [0.0 if row.get('final') else (row.get('temperature_k') or 0.0) for row in rows]
    hottest = [value for value, row in zip(values, rows) if not row.get('final')]
    top = max(hottest, default=0.0)
    rise = top - sorted(set(hottest))[-2] if len(set(hottest)) > 1 else 100.0
    return [top + rise / 2 if row.get('final') else value for value, row in zip(values, rows)]


def plot_temperature_learning_curve(rows: Sequence[dict], path: str | Path) -> Path:
    """Plot energy (meV/atom), force (meV/Å) and stress (GPa) RMSEs and the training-set size against T_k."""
    plt = _figure()
    temperatures = _temperatures(rows)
    fig, axes = plt.subplots(1, 4, figsize=(12.0, 3.4), dpi=120)
    panels = (
        ('energy_rmse_mev_per_atom', 'energy RMSE (meV/atom)'),
        ('force_rmse_mev_per_a', 'force RMSE (meV/Å)'),
        ('stress_rmse_gpa', 'stress RMSE (GPa)'),
        ('training_configurations', 'training configurations'),
    )
    for axis, (key, label) in zip(axes, panels):
        values = [np.nan if row.get(key) is None else row[key] for row in rows]
        axis.plot(temperatures, values, 'o-')
        axis.set_xlabel('T of the step (K; 0 = step 0)')
        axis.set_ylabel(label)
        for x, row, value in zip(temperatures, rows, values):
            if row.get('final'):
                axis.annotate('+random', (x, value), textcoords='offset points', xytext=(0, 6), ha='center',
                              fontsize='small')  # fmt: skip
    mae = [row.get('force_mae_pk_mev_per_a') or np.nan for row in rows]
    axes[1].plot(temperatures, mae, 's--', label='MAE$_{p95}$')
    axes[1].legend(frameon=False)
    evaluated = {row.get('evaluated_on', 'test') for row in rows}
    fig.suptitle(f'Learning curve against temperature ({" / ".join(sorted(evaluated))} set)')
    return _save(plt, fig, path)


def plot_occupancy_growth(rows: Sequence[dict], path: str | Path) -> Path:
    """Plot the occupied CBAD (type, bin) pairs per family after each step's selection."""
    plt = _figure()
    temperatures = _temperatures(rows)
    fig, axis = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    cbad = [(x, row) for x, row in zip(temperatures, rows) if row.get('occupied_per_family')]  # not the random step
    for family in _FAMILIES:
        values = [row['occupied_per_family'].get(family, 0) for _, row in cbad]
        if any(values):
            axis.plot([x for x, _ in cbad], values, 'o-', label=family)
    axis.set_yscale('log')
    axis.set_xlabel('T of the step (K; 0 = step 0)')
    axis.set_ylabel('occupied (type, bin) pairs')
    axis.legend(frameon=False, fontsize='small')
    axis.set_title('CBAD occupancy per family')
    return _save(plt, fig, path)


def write_temperature_report(
    output: str | Path, *, title: str, state: str, rows: Sequence[dict], errors: dict | None = None
) -> dict:
    """Write a temperature campaign's figures and ``index.md`` (table and figures) to ``output``."""
    output, figures = report_figures(
        output, rows, errors, learning_curve=plot_temperature_learning_curve, occupancy=plot_occupancy_growth
    )
    return write_index(output, title, state, temperature_status_table(rows), figures)
