"""Fluctuation formulas on synthetic NσT series with a known stiffness: B, the elastic tensor, Hill averages."""

import numpy as np
import pytest
from scipy.signal import lfilter
from scipy.spatial.transform import Rotation

from aiida_mofal.analysis.elastic import (
    BOLTZMANN_EV_PER_K,
    hill_averages,
    lagrangian_strains,
    strain_fluctuation_stiffness,
    volume_fluctuation_bulk_modulus,
)
from aiida_mofal.analysis.eos import EV_PER_A3_IN_GPA

T = 300.0
KT = BOLTZMANN_EV_PER_K * T
# a triclinic, positive-definite stiffness (GPa) of MOF size: cubic 40/25/10 with a few couplings
C_TRUE = np.array(
    [
        [40.0, 25.0, 24.0, 1.0, 0.0, 0.5],
        [25.0, 42.0, 25.0, 0.0, -1.0, 0.0],
        [24.0, 25.0, 38.0, 0.5, 0.0, 0.0],
        [1.0, 0.0, 0.5, 10.0, 0.3, 0.0],
        [0.0, -1.0, 0.0, 0.3, 11.0, 0.2],
        [0.5, 0.0, 0.0, 0.0, 0.2, 9.0],
    ]
)
H0 = np.array([[20.0, 0.0, 0.0], [1.0, 21.0, 0.0], [-0.5, 0.8, 22.0]])  # rows: cell vectors, Å
V0 = abs(np.linalg.det(H0))


def _cells_from_strains(voigt: np.ndarray, reference: np.ndarray = H0) -> np.ndarray:
    """Cells h = h₀ U with U = √(I + 2ε) the right stretch of the Green–Lagrange strain ε (Voigt, engineering)."""
    e = np.zeros((len(voigt), 3, 3))
    for k, (i, j) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        e[:, i, j] = e[:, j, i] = voigt[:, k] if k < 3 else voigt[:, k] / 2
    values, vectors = np.linalg.eigh(np.eye(3) + 2 * e)
    stretch = np.einsum('nij,nj,nkj->nik', vectors, np.sqrt(values), vectors)
    # columns: H = U H₀ᵀ, so F = U and FᵀF = I + 2ε; in rows h = Hᵀ = h₀ U
    return np.einsum('ij,njk->nik', reference, stretch)


def _sample_cells(n: int, seed: int, phi: float = 0.0) -> np.ndarray:
    """Strains from the NσT distribution, Gaussian with covariance k_B T/V · S (S = C⁻¹ in eV/Å³)."""
    compliance = np.linalg.inv(C_TRUE / EV_PER_A3_IN_GPA)
    draws = np.random.default_rng(seed).multivariate_normal(np.zeros(6), KT / V0 * compliance, size=n)
    if phi:  # correlate in time, keeping the covariance
        draws = lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], draws, axis=0)
    return _cells_from_strains(draws)


def test_strains_are_those_the_cells_were_built_from_and_rotation_free():
    voigt = np.random.default_rng(0).normal(0, 0.01, (50, 6))
    cells = _cells_from_strains(voigt)
    np.testing.assert_allclose(lagrangian_strains(cells, reference=H0), voigt, atol=1e-12)
    rotation = Rotation.from_euler('xyz', [20, -35, 50], degrees=True).as_matrix()
    rotated = np.einsum('nij,kj->nik', cells, rotation)  # every cell vector rotated
    np.testing.assert_allclose(lagrangian_strains(rotated, reference=H0), voigt, atol=1e-12)
    with pytest.raises(ValueError, match='frames × 3 × 3'):
        lagrangian_strains(np.ones((4, 9)))


def test_hill_averages_of_an_isotropic_solid():
    lam, mu = 30.0, 12.0
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[np.diag_indices(6)] = [lam + 2 * mu] * 3 + [mu] * 3
    hill = hill_averages(c)
    for bound in ('voigt', 'reuss', 'hill'):
        assert hill[f'B_{bound}'] == pytest.approx(lam + 2 * mu / 3)
        assert hill[f'G_{bound}'] == pytest.approx(mu)
    assert hill['E_hill'] == pytest.approx(mu * (3 * lam + 2 * mu) / (lam + mu))
    assert hill['nu_hill'] == pytest.approx(lam / (2 * (lam + mu)))


def test_stiffness_and_hill_averages_are_recovered_within_their_errors():
    cells = _sample_cells(20000, seed=1)
    result = strain_fluctuation_stiffness(cells, T)
    assert result.warnings == [] and result.n_blocks == 50
    deviation = np.abs(result.stiffness - C_TRUE) / result.stiffness_error
    assert deviation.max() < 4.5, deviation.max()
    relative = np.diag(result.stiffness_error) / np.diag(C_TRUE)
    assert np.all((relative > 1e-3) & (relative < 0.03))  # about 1 % from 20000 independent frames
    truth = hill_averages(C_TRUE)
    for key, value in truth.items():
        assert abs(result.hill[key] - value) < 4.5 * result.hill_error[key], key
    assert result.hill['B_reuss'] < result.hill['B_voigt']
    record = result.as_dict()
    assert record['B_hill_GPa'] == result.hill['B_hill'] and 'nu_hill_err' in record


def test_volume_fluctuations_give_the_reuss_bulk_modulus():
    cells = _sample_cells(40000, seed=2, phi=0.7)  # correlated in time: the block length follows
    volumes = np.abs(np.linalg.det(cells))
    result = volume_fluctuation_bulk_modulus(volumes, T)
    reuss = hill_averages(C_TRUE)['B_reuss']
    assert abs(result.b - reuss) < 4 * result.b_error
    # the variance of a Gaussian AR(1) series has relative error √(2/n_eff), n_eff = n (1 − φ²)/(1 + φ²)
    n_eff = 40000 * (1 - 0.7**2) / (1 + 0.7**2)
    assert result.b_error / result.b == pytest.approx(np.sqrt(2 / n_eff), rel=0.3)
    assert result.block_length >= 4 * 2  # τ_int ≈ 2.8 samples
    assert result.mean_volume == pytest.approx(V0, rel=1e-3)
    # the stiffness of the same run agrees with it through its Reuss bound
    assert abs(strain_fluctuation_stiffness(cells, T).hill['B_reuss'] - result.b) < 4 * result.b_error


def test_fixed_cells_short_runs_and_bad_temperatures_are_refused():
    with pytest.raises(ValueError, match='does not fluctuate'):
        volume_fluctuation_bulk_modulus(np.full(100, V0), T)
    with pytest.raises(ValueError, match='temperature must be positive'):
        volume_fluctuation_bulk_modulus(np.linspace(V0, V0 + 1, 100), 0.0)
    fixed = np.repeat(np.diag(np.diag(H0))[None], 200, axis=0)
    fixed[:, 0, 0] += np.random.default_rng(3).normal(0, 0.01, 200)  # an orthorhombic cell: only a stretches
    with pytest.raises(ValueError, match='strain component does not fluctuate'):
        strain_fluctuation_stiffness(fixed, T)
    strains = np.random.default_rng(6).normal(0, 0.01, (200, 6))
    strains[:, 1] = strains[:, 0]  # b stretches with a: one combination of strains never moves
    coupled = _cells_from_strains(strains)
    with pytest.raises(ValueError, match='singular'):
        strain_fluctuation_stiffness(coupled, T)
    with pytest.raises(ValueError, match='21 independent elastic constants'):
        strain_fluctuation_stiffness(_sample_cells(10, seed=4), T)
    with pytest.warns(UserWarning, match='independent samples|no plateau'):
        short = strain_fluctuation_stiffness(_sample_cells(400, seed=5, phi=0.98), T)
    assert short.warnings


def test_a_slowly_exchanged_cell_energy_sets_the_block_length_and_the_warning():
    """A barostat's volume can oscillate fast while the energy in the cell mode changes slowly (the EMT-copper NσT
    run of benchmarks/eos_fluctuations.py: τ(V) ≈ 4 samples, τ((V − ⟨V⟩)²) ≈ 35). B is a variance, so it has the
    independent samples of the squared deviations: the jackknife blocks and the too-short warning follow them.
    Here V is a weakly damped oscillator (period 8 samples, amplitude decaying over 100), 600 samples:
    τ(V) ≈ ½, τ(δV²) ≈ 7."""
    from aiida_mofal.analysis.statistics import block_average

    r, theta = 0.99, 2 * np.pi / 8
    x = lfilter([1.0], [1.0, -2 * r * np.cos(theta), r * r], np.random.default_rng(7).normal(size=600))
    volumes = V0 + 0.3 / 7.0 * x
    assert not block_average(volumes).warnings  # V alone: hundreds of independent samples, no warning
    with pytest.warns(UserWarning, match='volume fluctuation²'):
        result = volume_fluctuation_bulk_modulus(volumes, T)
    assert any('volume fluctuation²' in note for note in result.warnings)
    tau_squared = block_average((volumes - volumes.mean()) ** 2).correlation_time
    assert tau_squared > 5 and result.block_length == int(np.ceil(4 * tau_squared))
