"""The glass analysis of the shipped ZIF-4 crystal and ab initio glass against brute-force values computed here."""

import itertools

import numpy as np
import pytest
from ase.data import atomic_masses

from aiida_mofal.analysis.glass import analyse_glass, compare_to_reference
from tests.structure_files import read_structure

CRYSTAL, GLASS = 'ZIF-4_Lewis2009.cif', 'ZIF-4_glass01_Gaillac2020.cif'


@pytest.fixture(scope='module')
def analyses():
    """Both structures analysed once (rings to the paper's depth: 16 Zn, 32-membered Zn–Im rings)."""
    return {name: analyse_glass(read_structure(name)) for name in (CRYSTAL, GLASS)}


def _brute_force(atoms, cutoff=2.5):
    """Coordination, bond lengths and N–Zn–N angles from the full minimum-image distance matrix (cell > 2 cutoffs)."""
    zn = np.flatnonzero(atoms.numbers == 30)
    n = np.flatnonzero(atoms.numbers == 7)
    distances = atoms.get_all_distances(mic=True)[np.ix_(zn, n)]
    vectors = atoms.get_all_distances(mic=True, vector=True)[np.ix_(zn, n)]
    contacts = distances <= cutoff
    angles = []
    for row in range(len(zn)):
        for p, q in itertools.combinations(np.flatnonzero(contacts[row]), 2):
            u, v = vectors[row, p], vectors[row, q]
            angles.append(np.degrees(np.arccos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))))
    return contacts.sum(axis=1), distances[contacts], np.array(angles)


@pytest.mark.parametrize('name', [CRYSTAL, GLASS])
def test_coordination_density_and_angles_match_brute_force(analyses, name):
    atoms = read_structure(name)
    result = analyses[name]
    per_zn, bonds, angles = _brute_force(atoms)
    assert result['coordination']['Zn-N'] == pytest.approx(per_zn.mean())
    details = result['coordination_details']['Zn-N']
    assert details['fractions'] == {str(k): float(np.mean(per_zn == k)) for k in np.unique(per_zn)}
    assert details['bond_length_A'] == pytest.approx(bonds.mean())
    density = atomic_masses[atoms.numbers].sum() * 1.66053906660 / atoms.get_volume()  # amu/Å³ -> g/cm³
    assert result['density_g_cm3'] == pytest.approx(density, rel=1e-6)
    angle = result['angles']['N-Zn-N']
    assert angle['count'] == len(angles)
    assert angle['mean'] == pytest.approx(angles.mean()) and angle['std'] == pytest.approx(angles.std())
    assert 1.9 < result['rdf']['Zn-N']['first_peak'] < 2.1  # the Zn–N bond
    assert 5.5 < result['rdf']['Zn-Zn']['first_peak'] < 6.3  # Zn–Im–Zn
    assert result['warnings'] == [] and result['missing_pairs'] == []


@pytest.mark.parametrize('name', [CRYSTAL, GLASS])
def test_partial_rdfs_match_a_minimum_image_histogram(analyses, name):
    """Below half the cell width, minimum-image distances are all the pairs: the RDF must equal their histogram."""
    atoms = read_structure(name)
    result = analyses[name]
    matrix = atoms.get_all_distances(mic=True)
    edges = np.arange(0.0, 10.0 + 0.025, 0.05)
    shells = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    inside = edges[1:] < 7.0  # the shortest cell width of ZIF-4 is 15.4 Å
    for pair, (a, b) in {'Zn-N': (30, 7), 'Zn-Zn': (30, 30), 'N-N': (7, 7)}.items():
        ia, ib = np.flatnonzero(atoms.numbers == a), np.flatnonzero(atoms.numbers == b)
        block = matrix[np.ix_(ia, ib)]
        distances = block[~np.eye(len(ia), dtype=bool)] if a == b else block.ravel()  # ordered pairs, no self pairs
        counts, _ = np.histogram(distances, bins=edges)
        norm = len(ia) * (len(ia) - 1) if a == b else len(ia) * len(ib)
        expected = atoms.get_volume() * counts / (norm * shells)
        assert np.allclose(np.array(result['rdf'][pair]['g'])[inside], expected[inside]), pair


def test_the_glass_is_measurably_far_from_the_crystal(analyses):
    crystal, glass = analyses[CRYSTAL], analyses[GLASS]
    # the glass's Zn–N peak is broader (lower) and its angles spread wider than the crystal's
    assert glass['rdf']['Zn-N']['first_peak_height'] < crystal['rdf']['Zn-N']['first_peak_height']
    assert glass['angles']['N-Zn-N']['std'] > 1.5 * crystal['angles']['N-Zn-N']['std']
    distance = compare_to_reference(glass, crystal)
    itself = compare_to_reference(crystal, crystal)
    assert all(value == 0.0 for value in itself['rdf_r_chi'].values())
    assert all(value > 0.1 for value in distance['rdf_r_chi'].values())
    assert itself['angle_r_chi']['N-Zn-N'] == 0.0 < distance['angle_r_chi']['N-Zn-N']
    assert distance['density_ratio'] == pytest.approx(glass['density_g_cm3'] / crystal['density_g_cm3'])
    assert distance['rings'] == crystal['rings']


def test_the_pmf_is_zero_at_the_first_peak_and_infinite_where_g_vanishes(analyses):
    pmf, rdf = analyses[CRYSTAL]['pmf']['Zn-N'], analyses[CRYSTAL]['rdf']['Zn-N']
    peak = rdf['r'].index(rdf['first_peak'])
    assert pmf['F_kJ_mol'][peak] == 0.0
    assert pmf['F_kJ_mol'][0] is None  # g = 0 below the bond: F infinite, JSON null
    assert pmf['barrier_kJ_mol'] is None  # the crystal's first shell is closed (g = 0 behind it)
    finite = [k for k, value in enumerate(pmf['F_kJ_mol']) if value]
    assert finite  # the second shell, ~4.2 Å
    for k in finite:
        assert pmf['F_eV'][k] == pytest.approx(pmf['F_kJ_mol'][k] * 0.01036427, rel=1e-4)  # 1 kJ/mol in eV
        assert pmf['F_kJ_mol'][k] > 0 and rdf['g'][k] < rdf['first_peak_height']


def test_frames_are_averaged_with_their_spread():
    crystal = read_structure(CRYSTAL)
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(3):
        frame = crystal.copy()
        frame.positions += rng.normal(scale=0.02, size=frame.positions.shape)
        frames.append(frame)
    stretched = crystal.copy()
    stretched.set_cell(crystal.cell * 1.05, scale_atoms=True)
    frames.append(stretched)
    result = analyse_glass(frames, rings=True, max_ring_size=8)
    single = [analyse_glass(frame, rings=False)['density_g_cm3'] for frame in frames]
    assert result['n_frames'] == 4
    assert result['density_g_cm3'] == pytest.approx(np.mean(single))
    assert result['density_g_cm3_std'] == pytest.approx(np.std(single))
    assert max(result['rdf']['Zn-N']['g_std']) > 0
    # stretched by 5 %, Zn–N is 2.1 Å: still within 2.5 Å, so every frame has the same net
    assert result['rings'] == {'4': 4.0, '6': 16.0, '8': 32.0}
    assert result['ring_details']['distinct_nets'] == 1  # one ring search, reused by the other three frames
    assert result['ring_details']['frames'] == 4
    sparse = analyse_glass(frames, max_ring_size=8, ring_every=3)  # rings on frames 0 and 3 only
    assert sparse['ring_details']['frames'] == 2 and sparse['rings'] == result['rings']
    assert sparse['n_frames'] == 4 and sparse['density_g_cm3'] == result['density_g_cm3']


def test_a_structure_without_zn_reports_what_it_can():
    uio = read_structure('UiO-66-Zr_Trousselet2016.cif')
    result = analyse_glass(uio, pairs='Zn-N,Zr-O')
    assert result['missing_pairs'] == ['Zn-N']
    assert any('no Zn-N pairs' in warning and 'Zr' in warning for warning in result['warnings'])
    assert list(result['rdf']) == ['Zr-O'] and 2.0 < result['rdf']['Zr-O']['first_peak'] < 2.4
    assert result['coordination'] == {} and result['angles'] == {} and result['rings'] == {}
    assert result['density_g_cm3'] > 1.0


def test_reference_argument_gives_the_same_distance_as_compare(analyses):
    result = analyse_glass(read_structure(GLASS), reference=read_structure(CRYSTAL), rings=False)
    expected = compare_to_reference(analyses[GLASS], analyses[CRYSTAL])
    assert result['reference']['rdf_r_chi'] == pytest.approx(expected['rdf_r_chi'])
    assert result['reference']['angle_r_chi'] == pytest.approx(expected['angle_r_chi'])
