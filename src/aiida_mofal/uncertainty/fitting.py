"""Fitting the per-element mixtures of :mod:`aiida_mofal.uncertainty.gmm` (scikit-learn; not shipped remotely).

Scoring needs only numpy and lives in ``gmm`` (copied next to the remote MD and scan scripts); everything here
needs scikit-learn and runs where the density model is fitted: the PCA per element, the BIC scan, the
calibration hold-out and the training thresholds.
:meth:`DensityModel.fit <aiida_mofal.uncertainty.gmm.DensityModel.fit>` calls :func:`fit_element` per element.
"""

from __future__ import annotations

import numpy as np

from aiida_mofal.uncertainty.gmm import CALIBRATION_TOLERANCE, ElementMixture

__all__ = ['fit_element', 'reduced_dimension']

_MIN_CALIBRATION_ATOMS = 20  # fewer atoms of an element: no held-out check for it
_MIN_CALIBRATION_GROUPS = 5  # fewer configurations: hold out atoms instead of whole configurations
_ATOMS_PER_PARAMETER = 2  # the PCA dimension d is capped so that one full Gaussian (d(d+3)/2) has this many atoms


def reduced_dimension(pca_components: int | None, feature_size: int, atoms: int) -> int | None:
    """Dimension after PCA, or None for none: at most ``pca_components``, and small enough for ``atoms``.

    A full-covariance Gaussian in d dimensions has d(d+3)/2 parameters; with fewer than two atoms per
    parameter (a rare element: 96 Zr atoms in four UiO-66 cells) the mixture memorises its training atoms
    and flags fresh ones far above the nominal rate, so d shrinks with the atom count.
    """
    if pca_components is None:
        return None
    limit = 1
    while (limit + 1) * (limit + 4) / 2 * _ATOMS_PER_PARAMETER <= atoms:
        limit += 1
    d = min(int(pca_components), limit, atoms)
    return d if d < feature_size else None


def _split(count: int, groups: np.ndarray | None, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the held-out rows: whole groups (configurations) where there are enough, else rows."""
    held = np.zeros(count, dtype=bool)
    if fraction <= 0 or count < _MIN_CALIBRATION_ATOMS:
        return held
    rng = np.random.default_rng(seed + 7919)
    if groups is not None:
        unique = np.unique(groups)
        if len(unique) >= _MIN_CALIBRATION_GROUPS:
            chosen = rng.choice(unique, max(1, round(fraction * len(unique))), replace=False)
            held = np.isin(groups, chosen)
            if 0 < held.sum() < count:
                return held
    held[rng.choice(count, max(1, round(fraction * count)), replace=False)] = True
    return held


def _fit_mixture(x: np.ndarray, n_components: int, reg_covar: float, seed: int):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        n_components=n_components, covariance_type='full', reg_covar=reg_covar, random_state=seed, max_iter=500
    ).fit(x)


def _reduce(x: np.ndarray, pca_components: int | None, seed: int):
    """PCA per element when it reduces the dimension; returns (pca_mean, components, explained, reduced x)."""
    from sklearn.decomposition import PCA

    n = reduced_dimension(pca_components, x.shape[1], x.shape[0])
    if n is None:
        return None, None, None, x
    pca = PCA(n_components=n, svd_solver='full', random_state=seed).fit(x)
    mean, components = pca.mean_.copy(), pca.components_.copy()
    return mean, components, float(pca.explained_variance_ratio_.sum()), (x - mean) @ components.T


def _absolute_reg(x: np.ndarray, relative: float) -> float:
    """Regularisation relative to the data's spread: the same setting works for features of any scale."""
    scale = float(np.mean(np.var(x, axis=0))) if len(x) > 1 else 1.0
    return relative * (scale if scale > 0 else 1.0)


def fit_element(features: np.ndarray, groups: np.ndarray | None, settings: dict) -> ElementMixture:
    """BIC-chosen mixture on every (sub-sampled) atom, then the calibration check on a held-out part.

    The check repeats the fit (PCA, the chosen number of components, threshold) on the other part and counts
    the held-out atoms below that threshold; it re-uses the number of components rather than its own BIC
    scan, which would double the fitting time.
    """
    seed, percentile = settings['seed'], settings['threshold_percentile']
    rows = _subsample(features, settings['max_atoms_per_element'], seed)
    mean, components, explained, x = _reduce(rows, settings['pca_components'], seed)
    reg = _absolute_reg(x, settings['reg_covar'])
    best, scores = None, {}
    for m in range(1, min(int(settings['max_components']), len(x)) + 1):
        mixture = _fit_mixture(x, m, reg, seed)
        scores[m] = float(mixture.bic(x))
        if best is None or scores[m] < scores[best.n_components]:
            best = mixture
    element = _element_from(best, mean, components, features, percentile)
    element.bic, element.reg_covar, element.pca_explained_variance = scores, reg, explained
    held = _split(len(features), groups, settings['calibration_fraction'], seed)
    if held.any():
        rows = _subsample(features[~held], settings['max_atoms_per_element'], seed)
        mean, components, _, x = _reduce(rows, settings['pca_components'], seed)
        mixture = _fit_mixture(x, min(best.n_components, len(x)), _absolute_reg(x, settings['reg_covar']), seed)
        trial = _element_from(mixture, mean, components, features[~held], percentile)
        flagged = float(np.mean(trial.log_likelihood(features[held]) < trial.threshold))
        nominal = percentile / 100.0
        element.calibration = {
            'held_out_atoms': int(held.sum()),
            'fit_atoms': int((~held).sum()),
            'held_out_by': 'configuration' if groups is not None and _grouped(held, groups) else 'atom',
            'flagged_fraction': flagged,
            'nominal_fraction': nominal,
            'ratio': (flagged / nominal) if nominal > 0 else None,
            'calibrated': bool(flagged <= CALIBRATION_TOLERANCE * nominal) if nominal > 0 else None,
        }
    return element


def _grouped(held: np.ndarray, groups: np.ndarray) -> bool:
    """Tell whether the held-out rows are whole groups."""
    return not np.intersect1d(groups[held], groups[~held]).size


def _subsample(x: np.ndarray, max_atoms: int | None, seed: int) -> np.ndarray:
    """Return a seeded random subsample of at most ``max_atoms`` rows (the BIC scan's cost grows with the rows)."""
    if max_atoms is None or len(x) <= max_atoms:
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), max_atoms, replace=False))]


def _element_from(mixture, pca_mean, components, threshold_rows: np.ndarray, percentile: float) -> ElementMixture:
    element = ElementMixture(
        weights=mixture.weights_.copy(),
        means=mixture.means_.copy(),
        covariances=mixture.covariances_.copy(),
        precisions_cholesky=mixture.precisions_cholesky_.copy(),
        threshold=0.0,
        training_log_likelihood=np.empty(0),
        pca_mean=pca_mean,
        pca_components=components,
    )
    own = element.log_likelihood(threshold_rows)
    element.training_log_likelihood = own
    element.threshold = float(np.percentile(own, percentile))
    return element
