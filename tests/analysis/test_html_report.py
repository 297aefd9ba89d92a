"""The HTML report: per-element uncertainty histograms with thresholds, threshold-centred structure pictures,
per-atom extxyz for OVITO/chemiscope, and the page rendered by a real headless Chromium with every image loaded."""

import shutil

import matplotlib.image
import numpy as np
import pytest
from ase.build import molecule
from ase.io import read

from aiida_mofal.analysis.html_report import (
    browser_check,
    campaign_html_sections,
    uncertainty_excess,
    write_html_report,
)
from aiida_mofal.analysis.report import write_campaign_report

ROWS = [
    {'cycle': 0, 'training_configurations': 4, 'force_mae_pk_mev_per_a': 900.0, 'force_rmse_mev_per_a': 300.0},
    {'cycle': 1, 'training_configurations': 6, 'force_mae_pk_mev_per_a': 700.0, 'force_rmse_mev_per_a': 250.0,
     'unknown_fraction': 0.02, 'frames_scanned': 5, 'clusters_labelled': 2, 'failures': 0},
]  # fmt: skip


def _inputs():
    atoms = molecule('CH3CH2OH')
    atoms.center(vacuum=3.0)
    atoms.pbc = True
    rng = np.random.default_rng(0)
    uncertainty = rng.normal(-20.0, 5.0, len(atoms))  # negative values, as real densities give
    thresholds = {'H': 15.0, 'C': 22.0, 'O': 18.0}  # log-likelihood thresholds: unknown above −threshold
    forces = rng.normal(size=(len(atoms), 3))
    errors = {
        'structure_index': np.zeros(len(atoms), int),
        'natoms': np.array([len(atoms)]),
        'energy_ref': np.array([-10.0]),
        'energy_pred': np.array([-10.1]),
        'forces_ref': forces,
        'forces_pred': forces + 0.05,
    }
    return atoms, uncertainty, thresholds, errors


@pytest.fixture(scope='module')
def page(tmp_path_factory):
    output = tmp_path_factory.mktemp('report')
    atoms, uncertainty, thresholds, errors = _inputs()
    written = write_campaign_report(
        output, title='t', state='s', rows=ROWS, errors=errors, target=atoms, target_uncertainty=uncertainty,
        first_test_structure=atoms,
    )  # fmt: skip
    sections = campaign_html_sections(
        output, ROWS, written['figures'], target=atoms, target_uncertainty=uncertainty, thresholds=thresholds,
        errors=errors, test_structure=atoms,
    )  # fmt: skip
    return write_html_report(output, 'Campaign 7: <demo>', 'finished, exit status 0', sections), sections


def test_excess_is_positive_exactly_for_unknown_atoms():
    excess = uncertainty_excess(['H', 'O'], np.array([-14.0, -20.0]), {'H': 15.0, 'O': 18.0})
    assert excess == pytest.approx([1.0, -2.0])


def test_page_has_the_table_figures_and_per_atom_files(page):
    path, sections = page
    text = path.read_text()
    assert '&lt;demo&gt;' in text and '<table>' in text and text.count('<tr>') == 1 + len(ROWS) + 0
    assert [s.title for s in sections] == [
        'Cycles',
        'Uncertainty of the final model on the target',
        'Errors of the final model',
    ]
    figures = [figure for section in sections for figure in section.figures.values()]
    assert len(figures) == 6 and all(figure.stat().st_size > 5000 for figure in figures)
    assert text.count('<img ') == 6
    atoms, uncertainty, thresholds, _ = _inputs()
    written = read(path.parent / 'target_uncertainty.extxyz')
    assert np.allclose(written.arrays['uncertainty'], uncertainty)
    assert (
        written.arrays['unknown'].sum()
        == (uncertainty_excess(atoms.get_chemical_symbols(), uncertainty, thresholds) > 0).sum()
    )
    assert np.allclose(read(path.parent / 'test_force_error.extxyz').arrays['force_error'], 0.05 * np.sqrt(3))


@pytest.mark.skipif(shutil.which('chromium') is None, reason='needs Debian chromium (apt-get install chromium)')
def test_chromium_renders_the_page_and_loads_every_image(page, tmp_path):
    path, _ = page
    result = browser_check(path, screenshot=tmp_path / 'report.png')
    assert result['title'] == 'Campaign 7: <demo>'
    assert result['images_total'] == 6 and result['images_loaded'] == 6
    shot = matplotlib.image.imread(tmp_path / 'report.png')
    assert shot.shape[:2] == (2400, 1280) and shot.std() > 0.05  # not a blank page
