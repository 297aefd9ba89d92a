"""The stacked-whitening scoring of ``uncertainty.gmm`` against the per-component formula, chunk boundaries included."""

import importlib.util
import io
import sys

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from aiida_mofal.uncertainty import gmm
from aiida_mofal.uncertainty.gmm import DensityModel, ElementMixture


def _mixture(rng, components, dimension, features=None, threshold=-40.0):
    """Random parameters in scikit-learn's convention (precision = P Pᵀ, P upper triangular), optional PCA."""
    mixing = rng.normal(size=(components, dimension, dimension))
    covariances = mixing @ mixing.transpose(0, 2, 1) / dimension + 0.05 * np.eye(dimension)
    precisions_cholesky = np.stack([np.linalg.inv(np.linalg.cholesky(c)).T for c in covariances])
    weights = rng.random(components) + 0.1
    pca_mean = pca_components = None
    if features is not None:  # orthonormal rows, as PCA.components_
        pca_components = np.linalg.qr(rng.normal(size=(features, dimension)))[0].T
        pca_mean = rng.normal(3.0, 1.0, features)
    return ElementMixture(
        weights=weights / weights.sum(),
        means=rng.normal(4.0, 2.0, (components, dimension)),  # away from the origin: x − μ must not cancel
        covariances=covariances,
        precisions_cholesky=precisions_cholesky,
        threshold=threshold,
        training_log_likelihood=np.zeros(3),
        pca_mean=pca_mean,
        pca_components=pca_components,
    )


def _reference(element, features):
    """The straightforward formula: log Σ_k w_k N(x; μ_k, Σ_k) with scipy, after the PCA."""
    x = element.project(features)
    terms = [
        np.log(w) + multivariate_normal(mean, cov).logpdf(x)
        for w, mean, cov in zip(element.weights, element.means, element.covariances)
    ]
    return logsumexp(np.stack(terms, axis=1), axis=1)


@pytest.mark.parametrize(
    ('components', 'dimension', 'features'), [(8, 16, 64), (3, 16, None), (1, 8, 32), (8, 4, None)]
)
def test_scoring_equals_the_per_component_formula_across_chunks(components, dimension, features):
    rng = np.random.default_rng(components * 100 + dimension)
    element = _mixture(rng, components, dimension, features)
    size = features or dimension
    rows = 2 * gmm._CHUNK + 37  # three chunks, the last one short
    probe = element.pca_mean + rng.normal(0, 1, (rows, size)) if features else rng.normal(4.0, 3.0, (rows, size))
    expected = _reference(element, probe)
    got = element.log_likelihood(probe)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)
    assert np.ptp(expected) > 10  # the probe spans likely and unlikely atoms
    assert element.log_likelihood(probe[:0]).shape == (0,)


def test_score_gives_log_likelihood_and_flags_in_one_pass_and_unseen_elements_are_unknown():
    rng = np.random.default_rng(5)
    carbon, hydrogen = _mixture(rng, 4, 6, 12), _mixture(rng, 2, 6, 12)
    x = rng.normal(size=(500, 12)) + carbon.pca_mean
    carbon.threshold = float(np.median(carbon.log_likelihood(x)))
    density = DensityModel(elements={'C': carbon, 'H': hydrogen}, feature_size=12)
    symbols = np.array(['C', 'H', 'N', 'C', 'H'] * 100)
    log_likelihood, unknown = density.score(x, symbols.tolist())
    for symbol, element in (('C', carbon), ('H', hydrogen)):
        rows = symbols == symbol
        np.testing.assert_allclose(log_likelihood[rows], _reference(element, x[rows]), rtol=1e-10, atol=0)
        np.testing.assert_array_equal(unknown[rows], log_likelihood[rows] < element.threshold)
    assert np.isneginf(log_likelihood[symbols == 'N']).all() and unknown[symbols == 'N'].all()
    assert 0.3 < unknown[symbols == 'C'].mean() < 0.7  # the median threshold splits the carbons
    np.testing.assert_array_equal(density.is_unknown(x, symbols), unknown)
    np.testing.assert_array_equal(density.uncertainty(x, symbols), -log_likelihood)
    with pytest.raises(ValueError, match='N × 12 features'):
        density.score(x[:, :5], symbols)


def test_stored_format_is_unchanged_and_the_shipped_copy_scores_without_fitting_code(tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    density = DensityModel(elements={'Zr': _mixture(rng, 3, 8, 16)}, feature_size=16)
    density.elements['Zr'].bic = {1: 0.0}
    content = density.to_bytes()
    with np.load(io.BytesIO(content), allow_pickle=False) as data:  # the version-1 arrays only
        assert sorted(data.files) == sorted(
            ['header']
            + [f'Zr/{n}' for n in ('weights', 'means', 'covariances', 'precisions_cholesky', 'training_log_likelihood')]
            + ['Zr/pca_mean', 'Zr/pca_components']
        )
    # gmm.py alone, as shipped in mofal_md/ (no aiida_mofal.uncertainty.fitting next to it)
    copy = tmp_path / 'gmm.py'
    copy.write_text(open(gmm.__file__).read())
    spec = importlib.util.spec_from_file_location('shipped_gmm', copy)
    shipped = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, 'shipped_gmm', shipped)  # dataclasses look their module up there
    spec.loader.exec_module(shipped)
    probe = rng.normal(size=(50, 16)) + density.elements['Zr'].pca_mean
    loaded = shipped.DensityModel.from_bytes(content)
    expected = density.log_likelihood(probe, ['Zr'] * 50)  # equal up to BLAS rounding (array alignment)
    np.testing.assert_allclose(loaded.log_likelihood(probe, ['Zr'] * 50), expected, rtol=1e-14, atol=0)
    np.testing.assert_allclose(
        loaded.log_likelihood(probe, ['Zr'] * 50), _reference(density.elements['Zr'], probe), rtol=1e-10, atol=0
    )
