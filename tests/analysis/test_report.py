"""The campaign report: the status table, figures, and the density model's BIC curves and calibration."""

import numpy as np

from aiida_mofal.analysis.report import density_summary, write_campaign_report
from aiida_mofal.uncertainty.gmm import DensityModel


def test_report_shows_the_bic_curve_and_calibration_of_every_element(tmp_path):
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(c, 0.3, (150, 2)) for c in ((0, 0), (5, 0))] + [rng.normal(0, 1, (200, 2))])
    symbols = ['C'] * 300 + ['H'] * 200
    density = DensityModel.fit(features, symbols, groups=np.arange(500) // 25, max_components=3).summary()
    text = density_summary(density)
    assert text.count('BIC 1:') == 2 and 'C   2-D, 2 components, 300 atoms' in text
    assert 'by configuration' in text and 'nominal 1.00%' in text
    rows = [{'cycle': 0, 'training_configurations': 4, 'force_mae_pk_mev_per_a': 50.0, 'delta_e_std_mev_per_atom': 1.5}]
    result = write_campaign_report(tmp_path, title='t', state='finished', rows=rows, density=density)
    assert 'density_bic' in result['figures'] and (tmp_path / 'density_bic.png').stat().st_size > 0
    index = (tmp_path / 'index.md').read_text()
    assert 'BIC 1:' in index and '1.50' in index
