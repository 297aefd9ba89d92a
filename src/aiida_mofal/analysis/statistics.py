"""Statistical errors of time series from MD: block averaging, correlation times, blocked jackknife.

Successive MD samples are correlated, so the naive error of a mean, σ/√n, is too small by the square root of the
statistical inefficiency g = 2 τ_int (τ_int, the integrated correlation time in samples, with the convention
τ_int = 1/2 + Σ_{t≥1} ρ(t), so that uncorrelated samples have τ_int = 1/2 and g = 1).

- :func:`block_average` is the blocking transformation of Flyvbjerg and Petersen (J. Chem. Phys. 91, 461, 1989):
  average neighbouring pairs again and again; the error of the mean estimated from the blocks grows with the block
  size until the blocks are uncorrelated, then stays on a plateau. The plateau is found automatically with
  Jonsson's test (Phys. Rev. E 98, 043304, 2018): the first level from which the lag-1 autocorrelations of all
  coarser levels are compatible with zero (a χ² test at 99 %).
- :func:`integrated_correlation_time` sums the autocorrelation function with Sokal's self-consistent window
  (the smallest window W with W ≥ c τ_int(W), c = 5).
- :func:`blocked_jackknife` gives the error of any function of the series (a variance, a bulk modulus, an elastic
  tensor) from leave-one-block-out estimates over blocks longer than the correlation time.

A run is *too short* when it holds fewer than :data:`MIN_INDEPENDENT_SAMPLES` independent samples
(n / g) or when the blocking never reaches a plateau; the result then carries a warning saying how long to run.
Pure numpy/scipy; units are those of the series, times in samples unless ``timestep`` is given.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = (
    'MIN_INDEPENDENT_SAMPLES',
    'BlockAverage',
    'block_average',
    'blocked_jackknife',
    'integrated_correlation_time',
)

#: fewer independent samples than this (n / g) and the run is flagged as too short for its correlation time
MIN_INDEPENDENT_SAMPLES = 50


@dataclass
class BlockAverage:
    """Mean of a correlated series with its statistical error and the blocking table behind it."""

    mean: float
    error: float  #: standard error of the mean at the plateau
    error_of_error: float  #: standard error of ``error``
    naive_error: float  #: σ/√n, as if the samples were independent
    statistical_inefficiency: float  #: g = n σ²_mean / σ²  (= 2 τ_int)
    correlation_time: float  #: τ_int = g / 2, in samples (or in the unit of ``timestep``)
    n_samples: int
    n_independent: float  #: n / g
    plateau_level: int | None  #: blocking level of the plateau (block length 2**level); None: none reached
    block_lengths: np.ndarray  #: samples per block at each level
    level_errors: np.ndarray  #: error of the mean estimated at each level
    level_error_errors: np.ndarray  #: its uncertainty at each level
    warnings: list[str] = field(default_factory=list)

    @property
    def too_short(self) -> bool:
        """Whether the run is too short for its correlation time (see :data:`MIN_INDEPENDENT_SAMPLES`)."""
        return bool(self.warnings)

    def as_dict(self) -> dict:
        """JSON-ready summary: every field (the blocking table as lists) but the errors of the level errors."""
        record = {item.name: getattr(self, item.name) for item in fields(self) if item.name != 'level_error_errors'}
        record = {key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in record.items()}
        return {**record, 'too_short': self.too_short, 'warnings': list(self.warnings)}


def _as_series(series, minimum: int = 4) -> np.ndarray:
    values = np.asarray(series, dtype=float)
    if values.ndim != 1:
        raise ValueError(f'a time series must be one-dimensional, got shape {values.shape}')
    if values.size < minimum:
        raise ValueError(f'a time series of {values.size} samples is too short; at least {minimum} are needed')
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f'sample {bad} of the time series is not finite ({values[bad]}); drop the broken frames')
    return values


def block_average(series, timestep: float = 1.0, name: str = 'series') -> BlockAverage:
    """Mean and standard error of a correlated ``series`` by the Flyvbjerg–Petersen blocking transformation.

    ``timestep`` (the time between samples) only scales the reported correlation time. ``name`` appears in the
    warnings. A constant series has zero error and correlation time 1/2.
    """
    from scipy.stats import chi2

    values = _as_series(series)
    n = values.size
    mean = float(values.mean())
    variance = float(values.var()) if np.ptp(values) > 0 else 0.0
    naive = float(np.sqrt(variance / (n - 1))) if variance > 0 else 0.0
    if variance == 0:
        zero = np.zeros(1)
        return BlockAverage(mean, 0.0, 0.0, 0.0, 1.0, 0.5 * timestep, n, float(n), 0, np.ones(1), zero, zero)

    lengths, errors, error_errors, lag1 = [], [], [], []
    blocks, length = values, 1
    while blocks.size >= 2:
        m = blocks.size
        block_var = blocks.var()
        errors.append(np.sqrt(block_var / (m - 1)))
        error_errors.append(errors[-1] / np.sqrt(2.0 * (m - 1)))
        # Jonsson's statistic: m (γ₁/σ²)² where γ₁ is the lag-1 autocovariance of the blocks
        centred = blocks - blocks.mean()  # the level's own mean: dropped odd blocks shift it
        gamma = np.sum(centred[:-1] * centred[1:]) / m
        lag1.append(m * (gamma / block_var) ** 2 if block_var > 0 else 0.0)
        lengths.append(length)
        half = m // 2
        blocks = 0.5 * (blocks[0 : 2 * half : 2] + blocks[1 : 2 * half : 2])
        length *= 2
    levels = len(errors)
    # M_k = Σ_{j≥k} statistic_j ~ χ²(levels − k) once the level-k blocks are independent
    tail_sums = np.cumsum(np.asarray(lag1)[::-1])[::-1]
    plateau = next(
        (k for k in range(levels - 1) if tail_sums[k] < chi2.ppf(0.99, levels - k) and lengths[k] * 8 <= n),
        None,
    )
    notes = []
    level = plateau if plateau is not None else levels - 2
    error, error_error = float(errors[level]), float(error_errors[level])
    inefficiency = max(n * error**2 / variance * (n - 1) / n, 1.0) if variance > 0 else 1.0
    n_independent = n / inefficiency
    if plateau is None:
        notes.append(
            f'{name}: the blocking analysis of {n} samples reaches no plateau (blocks stay correlated up to '
            f'{lengths[level]} samples); the error {error:.3g} is a lower bound: run several times longer'
        )
    elif n_independent < MIN_INDEPENDENT_SAMPLES:
        needed = int(np.ceil(MIN_INDEPENDENT_SAMPLES * inefficiency))
        notes.append(
            f'{name}: only {n_independent:.0f} independent samples in {n} (correlation time '
            f'{0.5 * inefficiency * timestep:.3g}); run at least {needed} samples for {MIN_INDEPENDENT_SAMPLES}'
        )
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return BlockAverage(
        mean=mean,
        error=error,
        error_of_error=error_error,
        naive_error=naive,
        statistical_inefficiency=float(inefficiency),
        correlation_time=float(0.5 * inefficiency * timestep),
        n_samples=n,
        n_independent=float(n_independent),
        plateau_level=plateau,
        block_lengths=np.asarray(lengths),
        level_errors=np.asarray(errors),
        level_error_errors=np.asarray(error_errors),
        warnings=notes,
    )


def integrated_correlation_time(series, window_factor: float = 5.0, timestep: float = 1.0) -> float:
    """Integrated autocorrelation time τ_int = 1/2 + Σ_{t=1}^{W} ρ(t) with Sokal's automatic window.

    ρ is the normalised autocorrelation function (computed by FFT); W is the smallest lag with
    W ≥ ``window_factor`` · τ_int(W). Returns τ_int in samples times ``timestep``; 1/2 for independent samples.
    """
    values = _as_series(series)
    centred = values - values.mean()
    n = values.size
    if not np.any(centred):
        return 0.5 * timestep
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centred, size)
    autocovariance = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n] / n
    rho = autocovariance / autocovariance[0]
    tau = 0.5 + np.cumsum(rho[1:])
    windows = np.arange(1, n)
    inside = windows >= window_factor * tau
    window = int(np.argmax(inside)) if inside.any() else n - 2
    return float(tau[window] * timestep)


def blocked_jackknife(
    series, estimator: Callable[[np.ndarray], np.ndarray | float], block_length: int, max_blocks: int = 50
) -> tuple[np.ndarray, np.ndarray, int]:
    """Value and jackknife error of ``estimator`` over time blocks of at least ``block_length`` samples.

    ``series`` is an array whose first axis is time (frames × anything). The series is cut into as many
    contiguous blocks as fit (at most ``max_blocks``, the tail that does not fill a block is dropped), the
    estimator is evaluated on the whole and with each block left out, and the jackknife variance
    (b − 1)/b Σ (θ₋ᵢ − θ̄)² gives the error. Blocks longer than the correlation time make the leave-one-out
    estimates as good as independent. Returns ``(value, error, number_of_blocks)``; fewer than 2 blocks raise.
    """
    data = np.asarray(series, dtype=float)
    n = data.shape[0]
    block_length = max(int(block_length), 1)
    count = min(n // block_length, max_blocks)
    if count < 2:
        raise ValueError(
            f'{n} samples make fewer than 2 blocks of {block_length} (the correlation time); run longer for an error'
        )
    size = n // count
    data = data[: count * size]
    value = np.asarray(estimator(data), dtype=float)
    starts = np.arange(count) * size
    leave_out = np.array(
        [np.asarray(estimator(np.concatenate([data[:s], data[s + size :]])), dtype=float) for s in starts]
    )
    spread = leave_out - leave_out.mean(axis=0)
    error = np.sqrt((count - 1) / count * np.sum(spread**2, axis=0))
    return value, error, count
