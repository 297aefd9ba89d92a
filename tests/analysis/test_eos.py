"""E(V) equations of state: synthetic curves recovered, agreement with ASE, grids without a minimum refused."""

import numpy as np
import pytest
from ase.eos import EquationOfState

from aiida_mofal.analysis.eos import (
    EV_PER_A3_IN_GPA,
    UnbracketedMinimumError,
    eos_energy,
    fit_energy_volume,
    parse_energy_volume_points,
)

# a UiO-66-like cell: V0 9100 Å³, B0 38 GPa (cluster paper §4.5)
TRUE = {'e0': -3000.0, 'b0': 38.0, 'b0_prime': 4.6, 'v0': 9100.0}
GRID = TRUE['v0'] * np.linspace(0.94, 1.06, 9)  # the default: ±6 %, 9 points
NOISE = 0.002  # eV


def _curve(form: str, volumes=GRID, seed: int = 0, noise: float = NOISE) -> np.ndarray:
    exact = eos_energy(form, volumes, TRUE['e0'], TRUE['b0'] / EV_PER_A3_IN_GPA, TRUE['b0_prime'], TRUE['v0'])
    return exact + np.random.default_rng(seed).normal(0.0, noise, len(volumes))


@pytest.mark.parametrize('form', ['birch-murnaghan', 'vinet'])
def test_noisy_curves_are_recovered_with_honest_errors(form):
    fit = fit_energy_volume(GRID, _curve(form), form=form)
    assert abs(fit.v0 - TRUE['v0']) / TRUE['v0'] < 1e-3
    assert abs(fit.b0 - TRUE['b0']) / TRUE['b0'] < 1e-2
    assert abs(fit.b0 - TRUE['b0']) < 4 * fit.b0_error
    assert abs(fit.b0_prime - TRUE['b0_prime']) < 4 * fit.b0_prime_error
    assert fit.bracketed and fit.warnings == []
    # the residuals are those of the noise, and the fitted curve goes through the points
    assert 0.3 * NOISE < fit.rms_residual < 2 * NOISE
    np.testing.assert_allclose(fit.energy(fit.volumes) - fit.energies, fit.residuals, atol=1e-9)


def test_standard_errors_match_the_scatter_over_noise_realisations():
    fits = [fit_energy_volume(GRID, _curve('birch-murnaghan', seed=seed)) for seed in range(1, 61)]
    for key in ('v0', 'b0', 'b0_prime'):
        scatter = np.std([getattr(f, key) for f in fits])
        reported = np.mean([getattr(f, f'{key}_error') for f in fits])
        assert 0.7 < reported / scatter < 1.4, key


@pytest.mark.parametrize(('form', 'ase_form'), [('birch-murnaghan', 'birchmurnaghan'), ('vinet', 'vinet')])
def test_agrees_with_ase_on_the_same_points(form, ase_form):
    energies = _curve(form, seed=7)
    fit = fit_energy_volume(GRID, energies, form=form)
    reference = EquationOfState(GRID, energies, eos=ase_form)
    v0, e0, b0 = reference.fit()
    assert fit.v0 == pytest.approx(v0, rel=1e-7)
    assert fit.e0 == pytest.approx(e0, abs=1e-6)
    assert fit.b0 == pytest.approx(b0 * EV_PER_A3_IN_GPA, rel=1e-5)
    assert fit.b0_prime == pytest.approx(reference.eos_parameters[2], rel=1e-5)


@pytest.mark.parametrize('form', ['birch-murnaghan', 'vinet'])
def test_pressure_is_minus_the_derivative_of_the_energy(form):
    fit = fit_energy_volume(GRID, _curve(form, noise=0.0), form=form)
    volumes, step = GRID[1:-1], 1e-3
    numerical = -(fit.energy(volumes + step) - fit.energy(volumes - step)) / (2 * step) * EV_PER_A3_IN_GPA
    # atol: energies of ~3000 eV carry ~3e-13 eV of rounding each: a few 1e-8 GPa after dividing by 2e-3 Å³
    np.testing.assert_allclose(fit.pressure(volumes), numerical, rtol=1e-6, atol=1e-7)
    assert fit.pressure(fit.v0) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ('grid', 'fix'), [(np.linspace(1.0, 1.12, 7), 'smaller'), (np.linspace(0.88, 1.0, 7), 'larger')]
)
def test_grid_without_a_minimum_is_refused_or_flagged(grid, fix):
    volumes = TRUE['v0'] * (grid + (0.01 if fix == 'smaller' else -0.01))
    energies = _curve('birch-murnaghan', volumes)
    with pytest.raises(UnbracketedMinimumError, match=f'does not bracket a minimum.*add {fix} volumes'):
        fit_energy_volume(volumes, energies)
    with pytest.warns(UserWarning, match='does not bracket'):
        fit = fit_energy_volume(volumes, energies, allow_unbracketed=True)
    assert not fit.bracketed
    assert any('outside the grid' in note for note in fit.warnings)


def test_concave_energies_few_points_and_nan_are_refused():
    with pytest.raises(UnbracketedMinimumError, match='not convex'):
        # a downward parabola with one low point in the middle: a minimum inside the grid, but no convex one
        fit_energy_volume(GRID, -0.01 * np.array([16, 9, 4, 1, 20, 1, 4, 9, 16]))
    with pytest.raises(ValueError, match='4 distinct volumes.*at least 5'):
        fit_energy_volume(GRID[:4], _curve('vinet')[:4])
    energies = _curve('vinet')
    energies[3] = np.nan
    with pytest.raises(ValueError, match='point 4: the energy is not a finite number'):
        fit_energy_volume(GRID, energies)
    with pytest.raises(ValueError, match='unknown equation of state'):
        fit_energy_volume(GRID, _curve('vinet'), form='murnaghan')


def test_points_are_parsed_with_header_comments_and_either_separator():
    text = '# E-V of a cell\nvolume_A3, energy_eV\n100.0, -5.0\n\n101 -5.1\n102.5,\t-5.05\n'
    volumes, energies = parse_energy_volume_points(text)
    np.testing.assert_array_equal(volumes, [100.0, 101.0, 102.5])
    np.testing.assert_array_equal(energies, [-5.0, -5.1, -5.05])


@pytest.mark.parametrize(
    ('text', 'match'),
    [
        ('V E\n100 -5\n101\n', r'line 3: 1 column\(s\).*give two'),
        ('100 -5\n101 -5.1\nabc -5.2\n', r"line 3: 'abc' is not a number.*only the first line may be a header"),
        ('100,-5\n101,nan\n', 'line 2: .* not a finite number'),
        ('100 -5 3\n', r'line 1: 3 column\(s\)'),
        ('volume energy\n# nothing\n', 'holds no points'),
    ],
)
def test_bad_points_are_refused_with_their_line(text, match):
    with pytest.raises(ValueError, match=match):
        parse_energy_volume_points(text)
