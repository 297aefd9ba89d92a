"""Table and plots of a temperature campaign: errors against temperature, and the CBAD occupancy per family.

Pure functions of the step records (``aiida_mofal.campaign.queries.campaign_rows``), so that the same figures come
from a live profile or an imported archive. Step 0 (the perturbations) is drawn at T = 0 K.
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
    ('T K', 'temperature_k', '{:.0f}'),
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


def temperature_status_table(rows: Sequence[dict]) -> str:
    """Per-step table of a temperature campaign (``mofal status``); missing values print as ``-``."""
    return status_table(rows, COLUMNS)


def _temperatures(rows: Sequence[dict]) -> list[float]:
    return [row.get('temperature_k') or 0.0 for row in rows]


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
    for family in _FAMILIES:
        values = [(row.get('occupied_per_family') or {}).get(family, 0) for row in rows]
        if any(values):
            axis.plot(temperatures, values, 'o-', label=family)
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
