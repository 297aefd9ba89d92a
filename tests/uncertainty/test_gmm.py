"""Per-element Gaussian mixtures: BIC choice, numpy scoring, thresholds, file format, and real MOF features."""

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from aiida_mofal.uncertainty.gmm import DensityModel
from tests.structure_files import read_structure


def _blobs(seed=0):
    """Element A: three well separated 2-D clusters; element B: one elongated cluster."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    a = np.concatenate([rng.normal(c, 0.5, size=(200, 2)) for c in centres])
    b = rng.normal([3.0, 3.0], [2.0, 0.2], size=(300, 2))
    features = np.concatenate([a, b])
    symbols = np.array(['C'] * len(a) + ['H'] * len(b))
    return features, symbols


def test_bic_picks_the_number_of_clusters_and_numpy_scoring_equals_sklearn():
    from sklearn.mixture import GaussianMixture

    features, symbols = _blobs()
    density = DensityModel.fit(features, symbols, max_components=6, seed=0)
    assert density.n_components == {'C': 3, 'H': 1}
    assert min(density.elements['C'].bic, key=density.elements['C'].bic.get) == 3
    # our numpy log-likelihood is sklearn's score_samples of the same fit
    reference = GaussianMixture(3, covariance_type='full', reg_covar=1e-6, random_state=0, max_iter=500)
    reference.fit(features[symbols == 'C'])
    probe = np.random.default_rng(1).normal(4.0, 4.0, size=(50, 2))
    np.testing.assert_allclose(
        density.log_likelihood(probe, ['C'] * 50), reference.score_samples(probe), rtol=1e-10, atol=1e-10
    )
    # far from every cluster is less likely than a cluster centre
    assert density.uncertainty([[30.0, 30.0]], ['C'])[0] > density.uncertainty([[8.0, 0.0]], ['C'])[0]


def test_thresholds_are_the_training_percentile_and_unseen_elements_are_infinite():
    features, symbols = _blobs()
    density = DensityModel.fit(features, symbols, max_components=4, threshold_percentile=5.0)
    for symbol in ('C', 'H'):
        own = density.log_likelihood(features[symbols == symbol], symbols[symbols == symbol])
        assert density.thresholds[symbol] == pytest.approx(np.percentile(own, 5.0))
        fraction = density.is_unknown(features[symbols == symbol], symbols[symbols == symbol]).mean()
        assert 0.03 < fraction <= 0.06
    unseen = density.uncertainty([[0.0, 0.0]], ['N'])
    assert np.isposinf(unseen).all()
    assert density.is_unknown([[0.0, 0.0], [0.0, 0.0]], ['N', 'C']).tolist() == [True, False]


def test_fit_is_deterministic_and_the_file_round_trips_without_pickles(tmp_path):
    features, symbols = _blobs()
    first = DensityModel.fit(features, symbols, max_components=4, pca_components=1, seed=3)
    second = DensityModel.fit(features, symbols, max_components=4, pca_components=1, seed=3)
    assert first.to_bytes() == second.to_bytes()
    assert first.elements['C'].dimension == 1 and first.header()['pca'] == {'C': 1, 'H': 1}
    path = first.save(tmp_path / 'density.npz')
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert {'header', 'C/means', 'C/precisions_cholesky', 'C/pca_components'} <= set(data.files)
    loaded = DensityModel.load(path)
    probe = np.random.default_rng(2).normal(size=(20, 2))
    probe_symbols = ['C'] * 10 + ['H'] * 10
    expected = first.log_likelihood(probe, probe_symbols)
    np.testing.assert_array_equal(loaded.log_likelihood(probe, probe_symbols), expected)
    assert loaded.thresholds == first.thresholds and loaded.settings == first.settings


def test_subsampled_fit_keeps_thresholds_over_every_training_atom():
    features, symbols = _blobs()
    density = DensityModel.fit(features, symbols, max_components=4, max_atoms_per_element=120)
    assert density.n_components['C'] == 3  # 120 of 600 points still show three clusters
    assert len(density.elements['C'].training_log_likelihood) == 600
    assert density.settings['max_atoms_per_element'] == 120


def test_bad_settings_and_features_are_refused():
    features, symbols = _blobs()
    with pytest.raises(ValueError, match=r"unknown density-model settings \['max_component'\]"):
        DensityModel.fit(features, symbols, max_component=3)
    with pytest.raises(ValueError, match='threshold_percentile'):
        DensityModel.fit(features, symbols, threshold_percentile=150)
    bad = features.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        DensityModel.fit(bad, symbols)
    density = DensityModel.fit(features, symbols, max_components=1)
    with pytest.raises(ValueError, match='N × 2 features'):
        density.log_likelihood(np.zeros((3, 5)), ['C'] * 3)


def _formate_atoms(atoms):
    """Indices of the atoms of formate caps: a C bonded to H and to no C, with its H and O neighbours."""
    first, second = neighbor_list('ij', atoms, 1.7)
    found = set()
    for c in np.flatnonzero(atoms.numbers == 6):
        neighbours = second[first == c]
        if (atoms.numbers[neighbours] == 1).any() and not (atoms.numbers[neighbours] == 6).any():
            found.update([int(c), *neighbours.tolist()])
    return np.array(sorted(found))


def test_formate_capped_defect_and_distorted_frame_are_more_uncertain(extractor, uio66_density, training_features):
    features, symbols = training_features
    training_uncertainty = uio66_density.uncertainty(features, symbols)
    training_unknown = uio66_density.is_unknown(features, symbols)
    assert training_unknown.mean() == pytest.approx(0.01, abs=0.01)  # the 1st-percentile threshold

    defect = read_structure('UiO-66_formate_z11_Thornton2016.cif')
    defect_symbols = defect.get_chemical_symbols()
    defect_features = extractor.features(defect)
    uncertainty = uio66_density.uncertainty(defect_features, defect_symbols)
    unknown = uio66_density.is_unknown(defect_features, defect_symbols)
    formate = _formate_atoms(defect)
    assert len(formate) == 16  # four formate caps, HCOO each
    others = np.setdiff1d(np.arange(len(defect)), formate)
    # every formate atom is unknown; its uncertainty is above any training atom of its element
    assert unknown[formate].all()
    for index in formate:
        same = symbols == defect_symbols[index]
        assert uncertainty[index] > training_uncertainty[same].max()
    # the rest of the defective framework looks like the training set
    assert unknown[others].mean() < 0.05

    distorted = read_structure('UiO-66-Zr_Trousselet2016.cif')
    distorted.rattle(0.25, seed=7)
    distorted_features = extractor.features(distorted)
    assert uio66_density.is_unknown(distorted_features, distorted.get_chemical_symbols()).mean() > 0.5


def test_an_element_absent_from_training_is_flagged(extractor, uio66_density):
    atoms = read_structure('UiO-66-Zr_Trousselet2016.cif')
    first, second = neighbor_list('ij', atoms, 1.2)
    carbons = np.flatnonzero(atoms.numbers == 6)
    aromatic_carbon = next(c for c in carbons if (atoms.numbers[second[first == c]] == 1).any())
    atoms.numbers[aromatic_carbon] = 7  # a pyridine-like N: the model knows N, the training set has none
    features = extractor.features(atoms)
    symbols = atoms.get_chemical_symbols()
    uncertainty = uio66_density.uncertainty(features, symbols)
    assert np.isposinf(uncertainty[aromatic_carbon])
    assert uio66_density.is_unknown(features, symbols)[aromatic_carbon]
    assert np.isfinite(np.delete(uncertainty, aromatic_carbon)).all()
