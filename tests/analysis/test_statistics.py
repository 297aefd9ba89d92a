"""Block averaging, correlation times and the blocked jackknife on series with a known answer."""

import numpy as np
import pytest
from scipy.signal import lfilter

from aiida_mofal.analysis.statistics import block_average, blocked_jackknife, integrated_correlation_time


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    """x_t = φ x_{t−1} + ε_t: τ_int = (1 + φ)/(2(1 − φ)), var x = 1/(1 − φ²) for unit innovations."""
    noise = np.random.default_rng(seed).normal(size=n + 2000)
    return lfilter([1.0], [1.0, -phi], noise)[2000:]  # drop the start-up transient


def test_ar1_error_and_correlation_time_are_recovered():
    phi, n = 0.9, 2**17
    series = _ar1(phi, n, seed=1)
    tau = (1 + phi) / (2 * (1 - phi))  # 9.5 samples
    exact_error = np.sqrt(2 * tau / (1 - phi**2) / n)
    average = block_average(series, timestep=2.0)
    assert average.plateau_level is not None and not average.too_short
    assert average.error == pytest.approx(exact_error, rel=0.15)
    assert abs(average.error - exact_error) < 4 * average.error_of_error
    assert average.correlation_time / 2.0 == pytest.approx(tau, rel=0.2)
    assert average.naive_error < average.error / 3  # √(2τ) ≈ 4.4
    assert integrated_correlation_time(series) == pytest.approx(tau, rel=0.15)
    assert average.n_independent == pytest.approx(n / (2 * tau), rel=0.25)
    # the blocking table grows into its plateau
    assert average.level_errors[0] == pytest.approx(average.naive_error)
    assert average.level_errors[average.plateau_level] > 3 * average.level_errors[0]


def test_independent_samples_have_the_naive_error():
    series = np.random.default_rng(2).normal(3.0, 2.0, 20000)
    average = block_average(series)
    assert average.mean == pytest.approx(3.0, abs=4 * 2.0 / np.sqrt(20000))
    assert average.error == pytest.approx(average.naive_error, rel=0.15)
    assert average.correlation_time == pytest.approx(0.5, rel=0.3)
    assert integrated_correlation_time(series) == pytest.approx(0.5, abs=0.1)
    assert average.warnings == []


def test_run_too_short_for_its_correlation_time_is_flagged():
    series = _ar1(0.99, 2000, seed=3)  # τ ≈ 100 samples: about ten independent samples
    with pytest.warns(UserWarning, match='run (at least|several times longer)'):
        average = block_average(series, name='volume')
    assert average.too_short
    assert average.warnings[0].startswith('volume:')


def test_blocked_jackknife_of_the_mean_and_of_a_variance():
    series = _ar1(0.8, 2**15, seed=4)
    blocking = block_average(series)
    value, error, blocks = blocked_jackknife(series, np.mean, block_length=int(8 * blocking.correlation_time))
    assert blocks == 50 and value == pytest.approx(series[: blocks * (series.size // blocks)].mean())
    assert error == pytest.approx(blocking.error, rel=0.3)
    variance, variance_error, _ = blocked_jackknife(series, np.var, block_length=50)
    assert abs(variance - 1 / (1 - 0.8**2)) < 4 * variance_error
    # vector-valued estimators get one error per component
    _, errors, _ = blocked_jackknife(np.stack([series, 2 * series], axis=1), lambda x: x.mean(axis=0), 50)
    assert errors[1] == pytest.approx(2 * errors[0])
    with pytest.raises(ValueError, match='fewer than 2 blocks'):
        blocked_jackknife(series[:100], np.mean, block_length=60)


def test_bad_series_are_refused():
    with pytest.raises(ValueError, match='sample 2 .* not finite'):
        block_average([1.0, 2.0, np.nan, 3.0, 4.0])
    with pytest.raises(ValueError, match='one-dimensional'):
        block_average(np.ones((10, 2)))
    constant = block_average(np.full(100, 7.0))
    assert constant.error == 0.0 and constant.mean == 7.0
