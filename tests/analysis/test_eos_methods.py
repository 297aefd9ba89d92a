"""The four methods of mofal.eos without engines: settings, grids, analyses of synthetic runs, the comparison."""

import numpy as np
import pytest

from aiida_mofal.analysis.eos import EV_PER_A3_IN_GPA, UnbracketedMinimumError, eos_energy, eos_pressure
from aiida_mofal.analysis.eos_methods import (
    analyse_ev,
    analyse_pv,
    analyse_strain,
    compare_methods,
    md_settings_for,
    validate_method_settings,
)
from aiida_mofal.md.protocol import validate_md_settings


def test_ev_grid_is_nine_points_within_six_percent_by_default():
    settings = validate_method_settings('ev')
    assert len(settings['volume_factors']) == 9
    assert settings['volume_factors'][0] == pytest.approx(0.94)
    assert settings['volume_factors'][-1] == pytest.approx(1.06)


def test_a_grid_on_one_side_of_the_reference_is_refused_unless_allowed():
    with pytest.raises(ValueError, match='cannot bracket the minimum'):
        validate_method_settings('ev', {'volume_factors': [1.02, 1.04, 1.06, 1.08, 1.10]})
    grid = [1.02, 1.04, 1.06, 1.08, 1.10]
    allowed = validate_method_settings('ev', {'volume_factors': grid, 'allow_unbracketed': True})
    assert allowed['volume_factors'][0] == 1.02


@pytest.mark.parametrize(
    ('method', 'settings', 'message'),
    [
        ('ev', {'points': 3}, 'ev points'),
        ('ev', {'grid': 1}, 'unknown ev settings'),
        ('pv', {'pressures': [0.0, 1.0]}, 'at least 3'),
        ('strain', {'strain': 0.3}, 'not small'),
        ('strain', {'reference': 'relax'}, 'reference'),
        ('strain', {'steps': 50, 'thermo_every': 10}, 'fewer than 8 samples'),
        ('fluctuations', {'barostat': 'isotropic'}, 'triclinic'),
        ('pv', {'thermostat': 'berendsen'}, 'nose-hoover'),
        ('bulk', {}, 'unknown method'),
    ],
)
def test_bad_method_settings_are_refused(method, settings, message):
    with pytest.raises(ValueError, match=message):
        validate_method_settings(method, settings)


def test_md_settings_are_valid_md_protocols():
    settings = validate_method_settings('fluctuations', {'steps': 1000})
    md = validate_md_settings(md_settings_for(settings, 'npt', 300.0, 0.5, barostat='triclinic'))
    assert md['barostat'] == 'triclinic' and md['schedule'][0]['pressure'] == [0.5, 0.5]
    assert md['thermostat'] == 'nose-hoover'  # the default; langevin passes through
    langevin = validate_method_settings('pv', {'thermostat': 'langevin', 'steps': 1000})
    assert validate_md_settings(md_settings_for(langevin, 'npt', 10.0, 1.0))['thermostat'] == 'langevin'


def test_ev_analysis_gives_both_forms_and_flags_an_unbracketed_grid():
    volumes = np.linspace(94.0, 106.0, 9)
    energies = eos_energy('birch-murnaghan', volumes, -10.0, 140.0 / EV_PER_A3_IN_GPA, 4.5, 100.0)
    record = analyse_ev(volumes, energies)
    assert record['B0_GPa'] == pytest.approx(140.0, rel=1e-6) and record['bracketed']
    assert set(record['fits']) == {'birch-murnaghan', 'vinet'} and record['form_spread_GPa'] < 2.0
    shifted = np.linspace(101.0, 113.0, 9)
    energies = eos_energy('birch-murnaghan', shifted, -10.0, 140.0 / EV_PER_A3_IN_GPA, 4.5, 100.0)
    with pytest.raises(UnbracketedMinimumError):
        analyse_ev(shifted, energies)
    flagged = analyse_ev(shifted, energies, allow_unbracketed=True)
    assert not flagged['bracketed'] and any('bracket' in note for note in flagged['warnings'])


def _noisy(mean, sigma, n, seed):
    return mean + np.random.default_rng(seed).normal(0.0, sigma, n)


def test_strain_and_pv_analyses_recover_a_known_modulus_within_their_errors():
    b0, v0 = 140.0, 100.0
    volumes = v0 * np.array([0.985, 1.0, 1.015])
    steps = np.arange(0, 4000, 10)
    pressures = eos_pressure('birch-murnaghan', volumes, b0, 4.0, v0)
    record = analyse_strain(volumes, [_noisy(p, 0.3, steps.size, k) for k, p in enumerate(pressures)],
                            [steps] * 3, 0.2, v0)  # fmt: skip
    assert abs(record['B0_GPa'] - b0) < 3 * record['B0_GPa_err'] and record['B0_GPa_err'] < 10
    grid = [-1.0, 0.0, 1.0, 2.0, 3.0]
    from scipy.optimize import brentq

    mean_volumes = [brentq(lambda v, p=p: eos_pressure('birch-murnaghan-2', v, b0, 4.0, v0) - p, 80, 120) for p in grid]
    pv = analyse_pv(grid, [_noisy(v, 0.05, steps.size, k) for k, v in enumerate(mean_volumes)], [steps] * 5, 0.2)
    assert abs(pv['B0_GPa'] - b0) < 3 * pv['B0_GPa_err'] and pv['V0_A3'] == pytest.approx(v0, rel=1e-3)


def test_comparison_says_which_methods_agree():
    results = {'ev': {'B0_GPa': 140.0, 'B0_GPa_err': 0.1, 'form_spread_GPa': 0.5},
               'strain': {'B0_GPa': 141.0, 'B0_GPa_err': 1.0}, 'pv': {'B0_GPa': 120.0, 'B0_GPa_err': 2.0}}  # fmt: skip
    comparison = compare_methods(results)
    verdicts = {tuple(pair['methods']): pair['agree'] for pair in comparison['pairs']}
    assert verdicts == {('ev', 'pv'): False, ('ev', 'strain'): True, ('pv', 'strain'): False}
    assert not comparison['all_agree']
