"""One self-contained ``index.html`` for a campaign, a study or any result: tables, figures, per-atom files.

Pure functions of arrays and records, like :mod:`aiida_mofal.analysis.report`. The uncertainty is shown the way a
modeller reads it: per element, as histograms with that element's threshold, and on the structure as the excess
over the threshold (positive = unknown), in three projections; the raw per-atom values go to extxyz files
(``uncertainty``, ``excess``, ``unknown``, ``force_error``) that OVITO and chemiscope colour directly.

The page sets ``data-images-loaded`` / ``data-images-total`` on ``<body>`` once every image has loaded, so a
headless browser can check that it renders (``tests/analysis/test_html_report.py``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

__all__ = (
    'browser_check',
    'Section',
    'campaign_html_sections',
    'plot_structure_excess',
    'plot_uncertainty_histograms',
    'uncertainty_excess',
    'write_html_report',
    'write_per_atom_extxyz',
)


@dataclass
class Section:
    """A part of the page: a heading, an optional table (header + rows), figures and downloadable files."""

    title: str
    text: str = ''
    header: Sequence[str] = ()
    rows: Sequence[Sequence] = ()
    figures: Mapping[str, Path] = field(default_factory=dict)
    files: Mapping[str, Path] = field(default_factory=dict)


def _figure():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def plot_uncertainty_histograms(
    symbols: Sequence[str], uncertainty: np.ndarray, thresholds: Mapping[str, float], path: str | Path
) -> Path:
    """One histogram of per-atom uncertainty per element, with the element's unknown-atom threshold drawn.

    ``thresholds`` are the density model's (log-likelihood, per element); an atom is unknown when its uncertainty
    (−log likelihood) is above ``−threshold``. Values may be negative: a likelihood density can exceed one.
    """
    plt = _figure()
    symbols = np.asarray(symbols)
    uncertainty = np.asarray(uncertainty, dtype=float)
    elements = [s for s in dict.fromkeys(symbols.tolist())]
    fig, axes = plt.subplots(1, len(elements), figsize=(3.0 * len(elements), 3.0), dpi=110, squeeze=False)
    for axis, element in zip(axes[0], elements):
        values = uncertainty[(symbols == element) & np.isfinite(uncertainty)]
        limit = -float(thresholds[element]) if element in thresholds else None
        unknown = int((values > limit).sum()) if limit is not None else 0
        axis.hist(values, bins=30, color='tab:blue', alpha=0.8)
        if limit is not None:
            axis.axvline(limit, color='tab:red', ls='--', label='threshold')
        axis.set_title(f'{element}: {unknown} of {values.size} unknown')
        axis.set_xlabel('uncertainty (−log likelihood)')
    axes[0][0].set_ylabel('atoms')
    axes[0][0].legend(frameon=False, loc='upper right')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_structure_excess(atoms: Atoms, excess: np.ndarray, path: str | Path, label: str, title: str) -> Path:
    """Draw ``atoms`` in three projections, coloured by ``excess`` on a scale centred on zero.

    For uncertainty, ``excess`` is the amount above the element's threshold: red atoms are unknown, blue known,
    so the colour says the one thing the number means. Atoms are drawn back to front, sized by element.
    """
    plt = _figure()
    from ase.data import covalent_radii

    values = np.nan_to_num(np.asarray(excess, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    bound = float(np.max(np.abs(values))) or 1.0
    sizes = 160 * covalent_radii[atoms.numbers] ** 2 + 12
    fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.8), dpi=110, layout='constrained')
    for axis, (i, j, depth) in zip(axes, ((0, 1, 2), (0, 2, 1), (1, 2, 0))):
        order = np.argsort(atoms.positions[:, depth])
        scatter = axis.scatter(
            atoms.positions[order, i],
            atoms.positions[order, j],
            c=values[order],
            s=sizes[order],
            cmap='coolwarm',
            vmin=-bound,
            vmax=bound,
            edgecolors='k',
            linewidths=0.2,
        )
        axis.set_aspect('equal')
        axis.set_xlabel(f'{"xyz"[i]} (Å)')
        axis.set_ylabel(f'{"xyz"[j]} (Å)')
    fig.colorbar(scatter, ax=axes, label=label, shrink=0.85)
    fig.suptitle(title)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def write_per_atom_extxyz(atoms: Atoms, arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write ``atoms`` as extxyz with per-atom ``arrays`` (OVITO and chemiscope read them as properties)."""
    from ase.io import write

    atoms = atoms.copy()
    atoms.calc = None
    for name, values in arrays.items():
        atoms.new_array(name, np.asarray(values))
    write(str(path), atoms, format='extxyz')
    return Path(path)


def uncertainty_excess(symbols: Sequence[str], uncertainty: np.ndarray, thresholds: Mapping[str, float]) -> np.ndarray:
    """Per atom: uncertainty minus the element's threshold uncertainty (``−threshold``); > 0 means unknown."""
    limits = np.array([-float(thresholds.get(s, np.inf)) for s in symbols])
    return np.asarray(uncertainty, dtype=float) - limits


_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.from(document.images);
  var loaded = images.filter(function (img) { return img.complete && img.naturalWidth > 0; });
  document.body.setAttribute('data-images-total', images.length);
  document.body.setAttribute('data-images-loaded', loaded.length);
});
</script>"""

_STYLE = """<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
</style>"""


def _cell(value) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.4g}'
    return html.escape(str(value))


def _relative(path: Path, output: Path) -> str:
    try:
        return html.escape(str(Path(path).resolve().relative_to(output.resolve())))
    except ValueError:
        return html.escape(Path(path).resolve().as_uri())


def write_html_report(output: str | Path, title: str, state: str, sections: Sequence[Section]) -> Path:
    """Write ``output/index.html``: a heading, the state, then every section's text, table, figures and files."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    parts = [
        '<!DOCTYPE html>',
        '<html lang="en"><head><meta charset="utf-8">',
        f'<title>{html.escape(title)}</title>',
        _STYLE,
        '</head><body>',
        f'<h1>{html.escape(title)}</h1>',
        f'<p>State: {html.escape(state)}</p>',
    ]
    for section in sections:
        parts.append(f'<h2>{html.escape(section.title)}</h2>')
        if section.text:
            parts.append(f'<p>{html.escape(section.text)}</p>')
        if section.header:
            parts.append('<table><tr>' + ''.join(f'<th>{html.escape(str(h))}</th>' for h in section.header) + '</tr>')
            for row in section.rows:
                parts.append('<tr>' + ''.join(f'<td>{_cell(value)}</td>' for value in row) + '</tr>')
            parts.append('</table>')
        for name, path in section.figures.items():
            source = _relative(path, output)
            parts.append(
                f'<figure><img src="{source}" alt="{html.escape(name)}"><figcaption>{html.escape(name)}</figcaption>'
                '</figure>'
            )
        if section.files:
            items = ''.join(
                f'<li><a href="{_relative(path, output)}">{html.escape(name)}</a></li>'
                for name, path in section.files.items()
            )
            parts.append(f'<p>Files (extxyz: open in OVITO or chemiscope):</p><ul>{items}</ul>')
    parts += [_SCRIPT, '</body></html>']
    page = output / 'index.html'
    page.write_text('\n'.join(parts) + '\n', encoding='utf-8')
    return page


def campaign_html_sections(
    output: Path,
    rows: Sequence[dict],
    figures: Mapping[str, str | Path],
    *,
    target: Atoms | None = None,
    target_uncertainty: np.ndarray | None = None,
    thresholds: Mapping[str, float] | None = None,
    errors: Mapping[str, np.ndarray] | None = None,
    test_structure: Atoms | None = None,
) -> list[Section]:
    """Return the sections of a campaign's page: the cycle table, the learning figures, uncertainty, errors per atom.

    ``figures`` are those :func:`aiida_mofal.analysis.report.write_campaign_report` wrote (the old 2-D uncertainty
    scatter is replaced here by per-element histograms and the threshold-centred projections).
    """
    from .report import _COLUMNS

    header = [title for title, _, _ in _COLUMNS]
    table = [[row.get(key) for _, key, _ in _COLUMNS] for row in rows]
    learning = {name: Path(path) for name, path in figures.items() if name in ('learning_curve', 'unknown_fraction')}
    sections = [Section('Cycles', header=header, rows=table, figures=learning)]
    if target is not None and target_uncertainty is not None and thresholds:
        symbols = target.get_chemical_symbols()
        excess = uncertainty_excess(symbols, target_uncertainty, thresholds)
        unknown = excess > 0
        sections.append(
            Section(
                'Uncertainty of the final model on the target',
                text=(
                    f"{int(unknown.sum())} of {len(target)} atoms are above their element's threshold (unknown). "
                    "Uncertainty is −log likelihood of the atom's features under the element's Gaussian mixture; "
                    'it can be negative (a density above one). The structure is coloured by the excess over the '
                    'threshold: red is unknown, blue is known.'
                ),
                figures={
                    'per-element uncertainty': plot_uncertainty_histograms(
                        symbols, target_uncertainty, thresholds, output / 'uncertainty_histograms.png'
                    ),
                    'uncertainty excess on the target': plot_structure_excess(
                        target,
                        excess,
                        output / 'target_uncertainty_excess.png',
                        'uncertainty − threshold',
                        'Target: uncertainty above the element threshold',
                    ),
                },
                files={
                    'target_uncertainty.extxyz': write_per_atom_extxyz(
                        target,
                        {'uncertainty': target_uncertainty, 'excess': excess, 'unknown': unknown.astype(int)},
                        output / 'target_uncertainty.extxyz',
                    )
                },
            )
        )
    if errors is not None:
        section = Section('Errors of the final model', figures={})
        if 'parity' in figures:
            section.figures = {'parity': Path(figures['parity'])}
        if test_structure is not None:
            mask = np.asarray(errors['structure_index']) == 0
            per_atom = np.linalg.norm(errors['forces_pred'][mask] - errors['forces_ref'][mask], axis=1)
            section.figures = {
                **section.figures,
                'force error per atom': plot_structure_excess(
                    test_structure,
                    1000 * per_atom,
                    output / 'test_force_error_projections.png',
                    '|ΔF| (meV/Å)',
                    'First evaluated structure: force error',
                ),
            }
            section.files = {
                'test_force_error.extxyz': write_per_atom_extxyz(
                    test_structure, {'force_error': per_atom}, output / 'test_force_error.extxyz'
                )
            }
        sections.append(section)
    return sections


def browser_check(page: str | Path, screenshot: str | Path | None = None, timeout: float = 120.0) -> dict:
    """Open ``page`` in headless Chromium: count the images that loaded, and optionally take a screenshot.

    Uses the ``data-images-*`` attributes the page's own script sets on load. Needs ``chromium`` (Debian package)
    or ``chromium-browser`` / ``google-chrome`` on ``PATH``.

    :returns: ``images_total``, ``images_loaded``, ``title`` and ``screenshot`` (path, when asked).
    :raises FileNotFoundError: when no Chromium is installed.
    """
    import re
    import shutil
    import subprocess
    import tempfile

    browser = next(
        (shutil.which(name) for name in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(name)), None
    )
    if browser is None:
        raise FileNotFoundError('no chromium on PATH (Debian: apt-get install chromium)')
    url = Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix='mofal-chromium-') as profile:
        common = [browser, '--headless', '--no-sandbox', '--disable-gpu', f'--user-data-dir={profile}']
        dom = subprocess.run(
            [*common, '--virtual-time-budget=10000', '--dump-dom', url],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
        if screenshot is not None:
            subprocess.run(
                [*common, f'--screenshot={Path(screenshot).resolve()}', '--window-size=1280,2400', url],
                capture_output=True,
                timeout=timeout,
                check=True,
            )
    total = re.search(r'data-images-total="(\d+)"', dom)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    title = re.search(r'<title>(.*?)</title>', dom)
    return {
        'images_total': int(total.group(1)) if total else None,
        'images_loaded': int(loaded.group(1)) if loaded else None,
        'title': html.unescape(title.group(1)) if title else None,
        'screenshot': str(screenshot) if screenshot is not None else None,
    }
