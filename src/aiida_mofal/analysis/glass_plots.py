"""PNG figures of :func:`aiida_mofal.analysis.glass.analyse_glass` results, one or several structures overlaid.

The figures follow Castel & Coudert's: partial RDFs and the Zn–N PMF (Fig. 6), the N–Zn–N angle distribution and its
PMF (Fig. 7), and ring-size distributions (Fig. 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ['plot_angles', 'plot_glass', 'plot_pmf', 'plot_rdf', 'plot_rings']


def _pyplot():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _values(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def plot_rdf(results: Mapping[str, dict], path: Path) -> Path:
    """Plot partial RDFs, one panel per pair, every result of ``results`` (label -> analysis) overlaid."""
    plt = _pyplot()
    pairs = list(dict.fromkeys(name for result in results.values() for name in result['rdf']))
    figure, axes = plt.subplots(len(pairs), 1, figsize=(6, 2.4 * len(pairs)), sharex=True, squeeze=False)
    for axis, pair in zip(axes[:, 0], pairs, strict=True):
        for label, result in results.items():
            if pair in result['rdf']:
                axis.plot(result['rdf'][pair]['r'], result['rdf'][pair]['g'], label=label, lw=1.2)
        axis.axhline(1.0, color='grey', lw=0.5, ls=':')
        axis.set_ylabel(f'$g_{{\\mathrm{{{pair}}}}}(r)$')
        axis.legend(frameon=False, fontsize=8)
    axes[-1, 0].set_xlabel('r (Å)')
    return _save(figure, path)


def plot_pmf(results: Mapping[str, dict], path: Path, pairs=None) -> Path:
    """Plot potentials of mean force F(r) (kJ/mol) of ``pairs`` (default: the first pair of each result, Zn–N)."""
    plt = _pyplot()
    if pairs is None:  # the metal–ligand pair (the paper's Zn–N), else every pair
        bonded = [name for result in results.values() for name in (result.get('coordination') or {})]
        every = [name for result in results.values() for name in result['pmf']]
        pairs = list(dict.fromkeys(name for name in bonded if name in every)) or list(dict.fromkeys(every))
    figure, axes = plt.subplots(len(pairs), 1, figsize=(6, 2.8 * len(pairs)), sharex=True, squeeze=False)
    for axis, pair in zip(axes[:, 0], pairs, strict=True):
        for label, result in results.items():
            if pair in result['pmf']:
                axis.plot(result['pmf'][pair]['r'], _values(result['pmf'][pair]['F_kJ_mol']), label=label, lw=1.2)
        axis.set_ylabel(f'$F_{{\\mathrm{{{pair}}}}}(r)$ (kJ/mol)')
        if pair in (next(iter(results.values())).get('coordination') or {}):
            axis.set_xlim(1.5, 4.5)  # the first shell and the barrier behind it
        axis.legend(frameon=False, fontsize=8)
    axes[-1, 0].set_xlabel('r (Å)')
    return _save(figure, path)


def plot_angles(results: Mapping[str, dict], path: Path) -> Path:
    """Plot the N–Zn–N angle distribution (top) and its angular PMF (bottom)."""
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    for label, result in results.items():
        for triple, entry in (result.get('angles') or {}).items():
            if entry.get('mean') is None:
                continue
            theta = entry['histogram']['theta_deg']
            top.plot(theta, entry['histogram']['density'], label=f'{label} ({triple})', lw=1.2)
            bottom.plot(theta, _values(entry['pmf_kJ_mol']), label=label, lw=1.2)
    top.set_ylabel('probability density (1/°)')
    bottom.set_ylabel('F(θ) (kJ/mol)')
    bottom.set_xlabel('θ (°)')
    top.set_xlim(70, 160)
    top.legend(frameon=False, fontsize=8)
    return _save(figure, path)


def plot_rings(results: Mapping[str, dict], path: Path) -> Path:
    """Plot primitive rings per Zn by ring size (Zn per ring), bars side by side."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3))
    sizes = sorted({int(size) for result in results.values() for size in (result.get('rings') or {})})
    width = 0.8 / max(len(results), 1)
    for k, (label, result) in enumerate(results.items()):
        details = result.get('ring_details') or {}
        per_metal = details.get('per_metal') or {}
        axis.bar(
            np.array(sizes) + (k - (len(results) - 1) / 2) * width,
            [per_metal.get(str(s), 0.0) for s in sizes],
            width=width,
            label=label,
        )
    axis.set_xticks(sizes)
    axis.set_xlabel('ring size (Zn per ring; the Zn–Im ring has twice as many members)')
    axis.set_ylabel('rings per Zn')
    axis.legend(frameon=False, fontsize=8)
    return _save(figure, path)


def plot_glass(results: Mapping[str, dict], directory: Path, prefix: str = 'glass') -> list[Path]:
    """Write the four figures (``<prefix>_rdf.png``, ``_pmf``, ``_angles``, ``_rings``) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [plot_rdf(results, directory / f'{prefix}_rdf.png')]
    if any(result['pmf'] for result in results.values()):
        written.append(plot_pmf(results, directory / f'{prefix}_pmf.png'))
    if any((result.get('angles') or {}) for result in results.values()):
        written.append(plot_angles(results, directory / f'{prefix}_angles.png'))
    if any(result.get('rings') for result in results.values()):
        written.append(plot_rings(results, directory / f'{prefix}_rings.png'))
    return written


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return Path(path)
