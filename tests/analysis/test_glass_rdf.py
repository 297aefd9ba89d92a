"""Partial RDF normalisation on an ideal gas, the PMF, the first peak, and R_χ."""

import numpy as np
import pytest
from ase import Atoms, units

from aiida_mofal.analysis.glass import analyse_glass, parse_pairs
from aiida_mofal.analysis.rdf import first_peak, potential_of_mean_force, r_chi

TRICLINIC = np.array([[18.0, 0.0, 0.0], [6.0, 17.0, 0.0], [-4.0, 5.0, 19.0]])


def _ideal_gas(cell, n_a, n_b, seed):
    """Uncorrelated points in a periodic cell: an ideal gas, whose g(r) is 1 at every r."""
    rng = np.random.default_rng(seed)
    fractional = rng.random((n_a + n_b, 3))
    return Atoms(['Zn'] * n_a + ['N'] * n_b, scaled_positions=fractional, cell=cell, pbc=True)


def _rdf(result, pair):
    entry = result['rdf'][pair]
    return np.array(entry['r']), np.array(entry['g'])


@pytest.mark.parametrize('cell', [np.diag([18.0, 18.0, 18.0]), TRICLINIC], ids=['cubic', 'triclinic'])
def test_ideal_gas_gives_one_for_like_and_unlike_pairs(cell):
    frames = [_ideal_gas(cell, 300, 500, seed) for seed in range(4)]
    result = analyse_glass(frames, pairs='Zn-N,Zn-Zn,N-N', r_max=8.0, bin_width=0.5, rings=False)
    for pair, (n_a, n_b) in {'Zn-N': (300, 500), 'Zn-Zn': (300, 300), 'N-N': (500, 500)}.items():
        r, g = _rdf(result, pair)
        shell = 4 * np.pi * r**2 * 0.5
        unordered = n_a * n_b if n_a != n_b else n_a * (n_a - 1) / 2
        expected_pairs = 4 * unordered * shell / np.linalg.det(cell)  # per bin, 4 frames pooled
        expected_noise = 1 / np.sqrt(expected_pairs)  # Poisson
        outer = r > 3.0  # enough pairs per bin for a tight test
        assert np.all(np.abs(g[outer] - 1) < 5 * expected_noise[outer]), (pair, g[outer])
        # the average over the range is 1 to well within a percent: the normalisation has no bias
        assert abs(np.average(g[outer], weights=shell[outer]) - 1) < 0.01, pair


def test_like_pairs_of_few_atoms_are_normalised_by_n_times_n_minus_one():
    # 20 atoms: normalising by N² instead of N(N-1) would make g 5 % low, ten times the noise of 300 frames
    cell = np.diag([10.0, 10.0, 10.0])
    frames = [_ideal_gas(cell, 20, 0, seed) for seed in range(300)]
    result = analyse_glass(frames, pairs='Zn-Zn', r_max=4.9, bin_width=0.7, rings=False)
    r, g = _rdf(result, 'Zn-Zn')
    assert abs(np.average(g, weights=r**2) - 1) < 0.015, g


def test_ideal_gas_beyond_the_cell_counts_every_periodic_image():
    # r_max (12 Å) is longer than every lattice vector (~7-9 Å): neighbours are images, also of the atom itself
    cell = TRICLINIC / 2.2
    frames = [_ideal_gas(cell, 60, 60, seed) for seed in range(6)]
    result = analyse_glass(frames, pairs='Zn-N,N-N', r_max=12.0, bin_width=1.0, rings=False)
    for pair in ('Zn-N', 'N-N'):
        r, g = _rdf(result, pair)
        far = r > 6.0
        assert abs(np.mean(g[far]) - 1) < 0.03, (pair, g[far])


def test_pmf_is_zero_at_the_maximum_and_kt_ln_ratio_elsewhere():
    g = np.array([0.0, 0.5, 4.0, 1.0, 2.0])
    free = potential_of_mean_force(g, temperature=300.0)
    assert np.isnan(free[0])  # g = 0: infinite free energy, reported as missing
    assert free[2] == 0.0
    assert free[3] == pytest.approx(units.kB * 300.0 * np.log(4.0))
    assert free[1] == pytest.approx(units.kB * 300.0 * np.log(8.0))


def test_first_peak_skips_small_peaks_and_finds_the_shell_end():
    r = np.arange(12) * 0.5
    g = np.array([0, 0.3, 0.1, 0, 6.0, 1.0, 0, 0, 0, 2.0, 3.0, 1.0])
    peak = first_peak(r, g)
    assert peak['position'] == 2.0 and peak['height'] == 6.0  # the 0.3 bump is below half the highest peak
    assert peak['minimum'] == 3.5 and peak['minimum_height'] == 0  # the middle of the empty stretch 3.0-4.0 Å


def test_r_chi_is_zero_for_identical_rdfs_and_grows_with_the_difference():
    r = np.arange(0, 10, 0.05)
    g = np.exp(-((r - 2.0) ** 2) / 0.01)
    assert r_chi(g, g, 0.05) == 0.0
    shifted = np.exp(-((r - 2.1) ** 2) / 0.01)
    further = np.exp(-((r - 2.3) ** 2) / 0.01)
    assert 0 < r_chi(shifted, g, 0.05) < r_chi(further, g, 0.05)


@pytest.mark.parametrize(
    ('text', 'message'),
    [('Zn-Q', "unknown element 'Q'"), ('ZnN', 'two element symbols'), ('Zn-N-C', 'two element symbols'), ('', 'pair')],
)
def test_bad_pairs_are_refused_with_the_fix(text, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_pairs(text)
    assert 'Zn-N' in str(error.value)  # the message shows how to write a pair
