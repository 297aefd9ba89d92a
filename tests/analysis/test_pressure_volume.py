"""P–V equations of state: the stable branch, P_max, the spinodal, effective variances, finite strain."""

import numpy as np
import pytest

from aiida_mofal.analysis.eos import MechanicalInstabilityError, density_g_cm3, eos_pressure
from aiida_mofal.analysis.pressure_volume import (
    finite_difference_bulk_modulus,
    fit_pressure_volume,
    stable_branch,
    strain_volumes,
)

B0, V0 = 37.0, 9100.0  # GPa, Å³: UiO-66 at 300 K (cluster paper §4.5)


def _bm2(volumes):
    return eos_pressure('birch-murnaghan-2', volumes, B0, 4.0, V0)


def _curve_with_collapse_and_spinodal(volumes):
    """BM2 between 0.97 V0 and 1.03 V0, falling on compression below (collapse), rising above (past the spinodal)."""
    low, high = 0.97 * V0, 1.03 * V0
    p = _bm2(volumes)
    p = np.where(volumes < low, _bm2(low) - 0.002 * (low - volumes), p)
    return np.where(volumes > high, _bm2(high) + 0.002 * (volumes - high), p)


def test_noisy_birch_murnaghan_2_is_recovered():
    volumes = V0 * np.linspace(0.96, 1.03, 12)
    sigma = np.full(volumes.size, 0.01)
    pressures = _bm2(volumes) + np.random.default_rng(3).normal(0, sigma)
    fit = fit_pressure_volume(volumes, pressures, pressure_errors=sigma, mass_amu=6.0e3)
    assert abs(fit.v0 - V0) / V0 < 1e-3 and abs(fit.b0 - B0) / B0 < 1e-2
    assert abs(fit.b0 - B0) < 4 * fit.b0_error and abs(fit.v0 - V0) < 4 * fit.v0_error
    assert 0.2 < fit.chi2_reduced < 3
    assert fit.b0_prime == 4.0 and fit.b0_prime_error == 0.0
    assert fit.rho0 == pytest.approx(density_g_cm3(6.0e3, fit.v0)) and fit.rho0 == pytest.approx(1.0949, rel=2e-3)
    # no turnover inside the grid: P_max is only bounded from below, by the most compressed point
    assert fit.branch.p_max_is_lower_bound and fit.p_max == pytest.approx(pressures[0])
    assert any('no maximum of P(V)' in note for note in fit.warnings)


def test_p_max_and_spinodal_are_found_and_unstable_points_left_out():
    volumes = V0 * np.linspace(0.94, 1.06, 25)
    pressures = _curve_with_collapse_and_spinodal(volumes)
    with pytest.warns(UserWarning, match='spinodal'):
        fit = fit_pressure_volume(volumes, pressures)
    branch = fit.branch
    assert volumes[branch.p_max_index] == pytest.approx(0.97 * V0) and not branch.p_max_is_lower_bound
    assert fit.p_max == pytest.approx(_bm2(0.97 * V0)) and fit.p_max > 1.0
    assert volumes[branch.spinodal_index] == pytest.approx(1.03 * V0) and pressures[branch.spinodal_index] < 0
    assert set(branch.collapsed) == set(np.flatnonzero(volumes < 0.97 * V0 - 1e-6))
    assert set(branch.beyond_spinodal) == set(np.flatnonzero(volumes > 1.03 * V0 + 1e-6))
    # the turning points themselves are not fitted
    assert branch.fitted.tolist() == list(range(branch.start + 1, branch.stop))
    assert fit.b0 == pytest.approx(B0, rel=1e-6) and fit.v0 == pytest.approx(V0, rel=1e-8)
    record = fit.as_dict()
    assert record['P_max_GPa'] == fit.p_max and record['spinodal_GPa'] < 0
    assert len(record['beyond_spinodal_volumes_A3']) == branch.beyond_spinodal.size > 0
    assert any('beyond it are mechanically unstable' in note for note in fit.warnings)


def test_branch_holding_the_zero_crossing_is_chosen():
    volumes = V0 * np.linspace(0.9, 1.05, 16)
    pressures = _bm2(volumes)
    pressures[:4] = pressures[4] - np.array([0.1, 0.2, 0.3, 0.05])  # a noisy collapsed branch with its own rises
    branch = stable_branch(volumes, pressures)
    assert branch.start == 4 and branch.stop == volumes.size - 1 and branch.spinodal_index is None
    with pytest.raises(MechanicalInstabilityError, match='never falls'):
        stable_branch(volumes, np.linspace(-1, 1, volumes.size))


def test_volume_errors_of_npt_points_enter_as_effective_variance():
    rng = np.random.default_rng(11)
    targets = np.linspace(-0.4, 1.2, 9)  # set pressures, GPa
    exact = V0 * np.linspace(1.02, 0.96, 400)
    volumes_of = np.interp(targets, _bm2(exact), exact)  # P rises as V falls
    sigma_v = np.full(targets.size, 2.0)  # Å³, block-averaged ⟨V⟩ errors
    fit = fit_pressure_volume(volumes_of + rng.normal(0, sigma_v), targets, volume_errors=sigma_v)
    assert abs(fit.b0 - B0) < 4 * fit.b0_error and fit.b0_error < 0.05 * B0
    assert abs(fit.v0 - V0) < 4 * fit.v0_error
    # the errors follow from σ_V through the slope: ten times the volume noise, ten times the error
    loose = fit_pressure_volume(volumes_of, targets, volume_errors=10 * sigma_v)
    tight = fit_pressure_volume(volumes_of, targets, volume_errors=sigma_v)
    assert loose.b0_error / tight.b0_error == pytest.approx(10.0, rel=0.02)


def test_too_few_stable_points_and_bad_errors_are_refused():
    volumes = V0 * np.linspace(0.94, 1.06, 25)
    pressures = _curve_with_collapse_and_spinodal(volumes)
    keep = (volumes < 0.965 * V0) | (volumes > 1.025 * V0) | np.isclose(volumes, V0)
    with pytest.raises(ValueError, match='between its turning points'):
        fit_pressure_volume(volumes[keep], pressures[keep])
    with pytest.raises(ValueError, match='non-negative'):
        fit_pressure_volume(volumes, _bm2(volumes), pressure_errors=-np.ones(volumes.size))


def test_finite_strain_difference_and_its_propagated_error():
    volumes = strain_volumes(V0, 0.015)
    np.testing.assert_allclose(volumes, [0.985 * V0, V0, 1.015 * V0])
    sigma = np.array([0.004, 0.003, 0.005])
    pressures = _bm2(volumes) + np.random.default_rng(5).normal(0, sigma)
    result = finite_difference_bulk_modulus(volumes, pressures, sigma)
    # with three volumes the weighted slope is the central difference only for equal errors; σ_B is analytic
    weights = 1 / sigma**2
    spread = np.sum(weights * (volumes - np.sum(weights * volumes) / weights.sum()) ** 2)
    assert result.b_error == pytest.approx(V0 / np.sqrt(spread))
    assert abs(result.b - B0) < 4 * result.b_error and result.volume == pytest.approx(V0)
    equal = finite_difference_bulk_modulus(volumes, pressures, [0.004] * 3)
    assert equal.b == pytest.approx(-V0 * (pressures[2] - pressures[0]) / (volumes[2] - volumes[0]))
    assert equal.b_error == pytest.approx(V0 * np.sqrt(2) * 0.004 / (volumes[2] - volumes[0]))
    # without errors, the scatter about the line gives one (three points needed)
    assert finite_difference_bulk_modulus(volumes, pressures).b_error > 0
    with pytest.raises(ValueError, match='at least 3'):
        finite_difference_bulk_modulus(volumes[:2], pressures[:2])


def test_rising_pressure_beyond_the_spinodal_is_refused():
    volumes = strain_volumes(1.2 * V0, 0.015)
    beyond = -0.5 + 0.0002 * (volumes - volumes[0])  # negative and rising with the volume
    with pytest.raises(MechanicalInstabilityError, match='beyond the spinodal'):
        finite_difference_bulk_modulus(volumes, beyond, [0.01] * 3)
    with pytest.raises(ValueError, match=r'strain .* must lie in \(0, 0.5\)'):
        strain_volumes(V0, 0.7)
