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
    # our numpy log-likelihood is sklearn's score_samples of the same fit (2-D: no PCA; reg_covar is relative)
    reg = density.elements['C'].reg_covar
    assert reg == pytest.approx(1e-2 * np.var(features[symbols == 'C'], axis=0).mean())
    reference = GaussianMixture(3, covariance_type='full', reg_covar=reg, random_state=0, max_iter=500)
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


def _separated(dimension, per_cluster, seed, mixing=None):
    """Three separated clusters in ``dimension``-D, each an 8-D latent Gaussian mapped linearly, plus noise."""
    rng = np.random.default_rng(seed)
    if mixing is None:
        base = np.random.default_rng(100 + dimension)
        mixing = [(base.normal(0, 1, (8, dimension)), base.normal(0, 6, dimension)) for _ in range(3)]
    parts = [
        rng.normal(size=(per_cluster, 8)) @ m + c + rng.normal(0, 0.14, (per_cluster, dimension)) for m, c in mixing
    ]
    return np.concatenate(parts), mixing


def test_pca_by_default_lets_bic_resolve_separated_clusters_in_64_dimensions():
    features, mixing = _separated(64, 200, seed=0)
    symbols = ['C'] * len(features)
    groups = np.arange(len(features)) // 20  # 30 "configurations"
    raw = DensityModel.fit(features, symbols, groups=groups, max_components=3, pca_components=None, reg_covar=1e-6)
    assert raw.elements['C'].dimension == 64  # 2,144 parameters per component: the mixture memorises its atoms
    assert raw.calibration['C']['flagged_fraction'] > 0.1 and raw.calibrated is False
    density = DensityModel.fit(features, symbols, groups=groups, max_components=3)
    element = density.elements['C']
    assert element.dimension == 16 and element.n_components == 3
    assert min(element.bic, key=element.bic.get) == 3 and len(element.bic) == 3
    assert element.pca_explained_variance > 0.95
    # the calibration check held out whole configurations and stays within 3x the nominal 1 %
    check = density.calibration['C']
    assert check['held_out_by'] == 'configuration' and check['held_out_atoms'] == 6 * 20
    assert check['flagged_fraction'] <= 0.03 and check['calibrated'] and density.calibrated
    # fresh atoms of the same distribution are flagged near the nominal rate
    fresh, _ = _separated(64, 1000, seed=1, mixing=mixing)
    assert density.is_unknown(fresh, ['C'] * len(fresh)).mean() <= 0.03
    header = density.header()
    assert header['calibration']['C'] == check and header['pca'] == {'C': 16}
    loaded = DensityModel.from_bytes(density.to_bytes())
    assert loaded.calibration == density.calibration and loaded.elements['C'].reg_covar == element.reg_covar


def test_calibration_flags_an_over_fitted_model_and_can_be_switched_off():
    features, _ = _separated(32, 40, seed=2)  # 120 points in 32-D: full covariances memorise them
    symbols = ['C'] * len(features)
    overfit = DensityModel.fit(features, symbols, max_components=2, pca_components=None, reg_covar=1e-9)
    check = overfit.calibration['C']
    assert check['held_out_by'] == 'atom'  # no groups given
    assert check['flagged_fraction'] > 0.03 and check['calibrated'] is False and overfit.calibrated is False
    unchecked = DensityModel.fit(features, symbols, max_components=2, calibration_fraction=0.0)
    assert unchecked.calibration == {'C': None} and unchecked.calibrated is None
    with pytest.raises(ValueError, match='calibration_fraction'):
        DensityModel.fit(features, symbols, calibration_fraction=0.9)
    with pytest.raises(ValueError, match='groups must hold one value per atom'):
        DensityModel.fit(features, symbols, groups=[0, 1])


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
