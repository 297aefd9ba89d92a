"""PNG figures of the mechanical analyses: E–V with its fits, P–V with its fit and P_max, a volume histogram.

Pure functions of the fit objects and arrays (matplotlib, Agg backend), so that the command line and the
work chains draw the same figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .eos import EnergyVolumeFit
from .pressure_volume import PressureVolumeFit

__all__ = ('plot_energy_volume', 'plot_pressure_volume', 'plot_volume_histogram')

_LABELS = {'birch-murnaghan': 'Birch–Murnaghan 3', 'birch-murnaghan-2': 'Birch–Murnaghan 2', 'vinet': 'Vinet'}


def _figure():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(6, 4.5))


def _save(plt, fig, path: str | Path, dpi: int, ax, ylabel: str, title: str) -> Path:
    """Label the volume axis and ``ylabel``, add the title and legend, write the figure to ``path``."""
    ax.set_xlabel('volume (Å³)')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_energy_volume(
    fits: EnergyVolumeFit | list[EnergyVolumeFit], path: str | Path, title: str | None = None, dpi: int = 150
) -> Path:
    """E–V points and one curve per fit, energies relative to the lowest point, B0 and V0 in the legend."""
    fits = [fits] if isinstance(fits, EnergyVolumeFit) else list(fits)
    plt, fig, ax = _figure()
    v, e = fits[0].volumes, fits[0].energies
    reference = float(e.min())
    grid = np.linspace(min(v.min(), *(f.v0 for f in fits)), max(v.max(), *(f.v0 for f in fits)), 300)
    ax.plot(v, e - reference, 'o', color='black', label='points', zorder=3)
    for fit in fits:
        label = f'{_LABELS[fit.form]}: B0 = {fit.b0:.4g} ± {fit.b0_error:.2g} GPa, V0 = {fit.v0:.6g} Å³'
        ax.plot(grid, fit.energy(grid) - reference, label=label)
        ax.axvline(fit.v0, color=ax.lines[-1].get_color(), lw=0.8, ls=':')
    return _save(plt, fig, path, dpi, ax, 'E − E_min (eV)', title or 'Energy–volume')


def plot_pressure_volume(
    fit: PressureVolumeFit, path: str | Path, pressure_errors=None, title: str | None = None, dpi: int = 150
) -> Path:
    """P–V points (fitted ones filled), the fit over the stable branch and P_max."""
    plt, fig, ax = _figure()
    v, p, branch = fit.volumes, fit.pressures, fit.branch
    errors = None if pressure_errors is None else np.asarray(pressure_errors, dtype=float)
    fitted = np.zeros(v.size, bool)
    fitted[branch.fitted] = True
    for mask, style, label in ((fitted, 'o', 'fitted'), (~fitted, 'o', 'left out')):
        if mask.any():
            ax.errorbar(v[mask], p[mask], yerr=None if errors is None else errors[mask], fmt=style, capsize=2,
                        mfc='black' if label == 'fitted' else 'white', color='black', label=label)  # fmt: skip
    grid = np.linspace(v[branch.start], v[branch.stop], 200)
    ax.plot(grid, fit.pressure(grid), label=f'{_LABELS[fit.form]}: B0 = {fit.b0:.4g} ± {fit.b0_error:.2g} GPa')
    bound = '≥ ' if branch.p_max_is_lower_bound else ''
    ax.axhline(fit.p_max, color='tab:red', lw=0.8, ls='--', label=f'P_max {bound}{fit.p_max:.3g} GPa')
    ax.axhline(0.0, color='grey', lw=0.5)
    return _save(plt, fig, path, dpi, ax, 'pressure (GPa)', title or 'Pressure–volume')


def plot_volume_histogram(
    volumes, path: str | Path, bulk_modulus: float | None = None, title: str | None = None, dpi: int = 150
) -> Path:
    """Histogram of the volume of an NPT/NσT run with the Gaussian of its mean and variance."""
    plt, fig, ax = _figure()
    v = np.asarray(volumes, dtype=float)
    ax.hist(v, bins='auto', density=True, color='tab:blue', alpha=0.6, label=f'{v.size} frames')
    grid = np.linspace(v.min(), v.max(), 200)
    mean, std = v.mean(), v.std()
    if std > 0:
        gauss = np.exp(-0.5 * ((grid - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))
        extra = '' if bulk_modulus is None else f', B = {bulk_modulus:.3g} GPa'
        ax.plot(grid, gauss, color='black', label=f'⟨V⟩ = {mean:.6g} Å³, σ = {std:.3g} Å³{extra}')
    return _save(plt, fig, path, dpi, ax, 'probability density (1/Å³)', title or 'Volume fluctuations')
