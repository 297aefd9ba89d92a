"""Uncertainty from feature-space density: one Gaussian mixture per element (SCIENCE.md §2).

Fitting uses scikit-learn's ``GaussianMixture`` (full covariances, k-means initialisation with a fixed
seed, so a fit is reproducible); the number of components of each element's mixture is the one with the
lowest BIC over ``1..max_components``. By default a PCA per element (fitted on its training features)
reduces MACE's 16-128-dimensional features to at most 16, the paper's 8-16 (SCIENCE.md §2): full
covariances in 64-D cost 2,080 parameters per component, so BIC picks one component and the mixture
over-fits. Covariances are regularised relative to the data's spread (``reg_covar`` times the mean variance).

Calibration: before the final fit, a part of the training configurations (``calibration_fraction``) is held
out, the same procedure is fitted on the rest, and the fraction of held-out atoms below the threshold is
recorded per element -- for a calibrated model near the nominal percentile; above
``CALIBRATION_TOLERANCE`` (3) times it, the model over-flags fresh in-distribution atoms.

Scoring is plain numpy from the stored parameters, so the remote scan script needs neither scikit-learn
nor pickles: a :class:`DensityModel` is saved as an ``.npz`` of arrays plus one JSON header and loaded
with ``allow_pickle=False``. Format (version 1), for element ``X``:

* ``X/weights`` (M), ``X/means`` (M × d), ``X/covariances`` (M × d × d), ``X/precisions_cholesky``
  (M × d × d, scikit-learn's convention: ``y = (x − μ) @ P`` is standard normal);
* ``X/pca_mean`` (F) and ``X/pca_components`` (d × F) when a PCA was fitted;
* ``X/training_log_likelihood`` -- the training atoms' own log-likelihoods (for thresholds, histograms);
* ``header`` -- JSON text: format version, elements, feature size, thresholds, BIC curves, calibration,
  settings (files written before the calibration fields read as having none).

Uncertainty of an atom = − log-likelihood of its features under its element's mixture (nats; the density
is over the (PCA-reduced) feature space, so values compare only within one element and one model). An
element absent from training has likelihood zero: uncertainty +inf, always unknown. An atom is *unknown*
when its log-likelihood is below its element's threshold, by default the 1st percentile of the training
atoms' own log-likelihoods (so about 1% of training atoms count as unknown by construction).

Only numpy at import time: this module is copied next to the remote scan script.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ['CALIBRATION_TOLERANCE', 'DensityModel', 'ElementMixture', 'FORMAT_VERSION']

FORMAT_VERSION = 1
_LOG_2PI = float(np.log(2 * np.pi))
CALIBRATION_TOLERANCE = 3.0  # a held-out flagged fraction above 3x the nominal percentile is "not calibrated"
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


@dataclass
class ElementMixture:
    """The Gaussian mixture (and optional PCA) of one element."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    threshold: float
    training_log_likelihood: np.ndarray
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None
    bic: dict = field(default_factory=dict)
    calibration: dict | None = None
    reg_covar: float | None = None
    pca_explained_variance: float | None = None

    @property
    def n_components(self) -> int:
        """Number of Gaussians."""
        return int(len(self.weights))

    @property
    def dimension(self) -> int:
        """Dimension of the space the mixture lives in (after PCA)."""
        return int(self.means.shape[1])

    def project(self, features: np.ndarray) -> np.ndarray:
        """Apply the PCA (if any) to N × F features."""
        if self.pca_components is None:
            return features
        return (features - self.pca_mean) @ self.pca_components.T

    def log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """Log density of each row of ``features`` under the mixture (numpy; equals sklearn's score_samples)."""
        x = self.project(np.asarray(features, dtype=float))
        d = self.dimension
        log_prob = np.empty((len(x), self.n_components))
        for k in range(self.n_components):
            chol = self.precisions_cholesky[k]
            y = (x - self.means[k]) @ chol
            log_det = np.sum(np.log(np.diag(chol)))
            log_prob[:, k] = np.log(self.weights[k]) - 0.5 * (d * _LOG_2PI + np.sum(y * y, axis=1)) + log_det
        top = log_prob.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(log_prob - top).sum(axis=1, keepdims=True)))[:, 0]


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


def _fit_element(features: np.ndarray, groups: np.ndarray | None, settings: dict) -> ElementMixture:
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


@dataclass
class DensityModel:
    """Per-element Gaussian mixtures on the last-layer features of one MACE model."""

    elements: dict[str, ElementMixture]
    feature_size: int
    settings: dict = field(default_factory=dict)

    DEFAULTS = {
        'max_components': 8,
        'pca_components': 16,
        'threshold_percentile': 1.0,
        'seed': 0,
        'reg_covar': 1e-2,
        'max_atoms_per_element': None,
        'calibration_fraction': 0.2,
    }

    @classmethod
    def validate_settings(cls, settings: Mapping | None) -> dict:
        """Return the full settings; unknown keys or bad values raise a ValueError that names them."""
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(cls.DEFAULTS))
        if unknown:
            raise ValueError(f'unknown density-model settings {unknown}; allowed: {sorted(cls.DEFAULTS)}.')
        merged = {**cls.DEFAULTS, **settings}
        if int(merged['max_components']) < 1:
            raise ValueError('max_components must be at least 1.')
        if merged['pca_components'] is not None and int(merged['pca_components']) < 1:
            raise ValueError('pca_components must be at least 1 (or None for no PCA).')
        if not 0.0 <= float(merged['threshold_percentile']) <= 100.0:
            raise ValueError('threshold_percentile must be within [0, 100].')
        if float(merged['reg_covar']) <= 0:
            raise ValueError('reg_covar must be positive (it is relative to the mean feature variance).')
        if not 0.0 <= float(merged['calibration_fraction']) <= 0.5:
            raise ValueError('calibration_fraction must be within [0, 0.5] (0: no held-out calibration check).')
        if merged['max_atoms_per_element'] is not None:
            if int(merged['max_atoms_per_element']) < 1:
                raise ValueError('max_atoms_per_element must be at least 1 (or None to fit on every atom).')
            merged['max_atoms_per_element'] = int(merged['max_atoms_per_element'])
        merged['max_components'] = int(merged['max_components'])
        merged['pca_components'] = None if merged['pca_components'] is None else int(merged['pca_components'])
        merged['threshold_percentile'] = float(merged['threshold_percentile'])
        merged['seed'] = int(merged['seed'])
        merged['reg_covar'] = float(merged['reg_covar'])
        merged['calibration_fraction'] = float(merged['calibration_fraction'])
        return merged

    @classmethod
    def fit(
        cls, features: np.ndarray, symbols: Sequence[str], groups: Sequence[int] | None = None, **settings
    ) -> DensityModel:
        """Fit one mixture per element to N × F ``features`` of atoms with chemical ``symbols``.

        Settings: ``max_components`` (8; BIC scan over 1..M), ``pca_components`` (16: PCA per element on
        its training features when the features have more dimensions; None: none), ``threshold_percentile``
        (1.0), ``seed`` (0), ``reg_covar`` (1e-2, times the mean variance of the element's reduced features,
        added to covariance diagonals), ``max_atoms_per_element`` (None: fit each mixture on at most this
        many randomly chosen atoms -- the BIC scan grows with the atom count; the threshold still uses every
        training atom), ``calibration_fraction`` (0.2: hold out this part of the training configurations,
        fit on the rest and record which fraction of the held-out atoms is flagged; 0: no check).

        ``groups`` (one integer per atom, e.g. its configuration) makes the calibration hold out whole
        configurations: atoms of one frame are correlated, so a held-out atom of a fitted frame is not fresh.
        """
        settings = cls.validate_settings(settings)
        features = np.asarray(features, dtype=float)
        symbols = np.asarray(symbols)
        if features.ndim != 2 or len(features) != len(symbols):
            raise ValueError(f'features must be N × F with one symbol per row; got {features.shape}, {len(symbols)}.')
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (len(features),):
                raise ValueError(f'groups must hold one value per atom; got {groups.shape} for {len(features)} atoms.')
        if not np.all(np.isfinite(features)):
            raise ValueError('features contain NaN or inf; the model or the structures are broken.')
        if not len(features):
            raise ValueError('no training atoms to fit a density model on.')
        elements = {}
        for symbol in sorted(set(symbols.tolist())):
            selected = symbols == symbol
            elements[symbol] = _fit_element(features[selected], None if groups is None else groups[selected], settings)
        return cls(elements=elements, feature_size=int(features.shape[1]), settings=settings)

    @property
    def calibration(self) -> dict[str, dict | None]:
        """Per element: the held-out check (flagged fraction against the nominal one), None where not run."""
        return {symbol: element.calibration for symbol, element in self.elements.items()}

    @property
    def calibrated(self) -> bool | None:
        """False when any element's held-out flagged fraction exceeds 3x the nominal; None when none was checked."""
        checks = [c['calibrated'] for c in self.calibration.values() if c and c.get('calibrated') is not None]
        return all(checks) if checks else None

    @property
    def bic(self) -> dict[str, dict[int, float]]:
        """Per element: BIC for each number of components tried (the curve the choice came from)."""
        return {symbol: dict(element.bic) for symbol, element in self.elements.items()}

    @property
    def thresholds(self) -> dict[str, float]:
        """Per element: log-likelihood below which an atom is unknown."""
        return {symbol: element.threshold for symbol, element in self.elements.items()}

    @property
    def n_components(self) -> dict[str, int]:
        """Per element: number of Gaussians chosen by BIC."""
        return {symbol: element.n_components for symbol, element in self.elements.items()}

    def log_likelihood(self, features: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
        """Per-atom log-likelihood; −inf for elements the model was not fitted on."""
        features = np.asarray(features, dtype=float)
        symbols = np.asarray(symbols)
        if features.ndim != 2 or features.shape[1] != self.feature_size or len(features) != len(symbols):
            raise ValueError(
                f'expected N × {self.feature_size} features and N symbols, got {features.shape} and {len(symbols)}; '
                'features must come from the MACE model this density model was fitted for.'
            )
        result = np.full(len(features), -np.inf)
        for symbol, element in self.elements.items():
            selected = symbols == symbol
            if selected.any():
                result[selected] = element.log_likelihood(features[selected])
        return result

    def uncertainty(self, features: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
        """Per-atom uncertainty = negative log-likelihood (+inf for unseen elements)."""
        return -self.log_likelihood(features, symbols)

    def is_unknown(self, features: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
        """Return True for atoms whose log-likelihood is below their element's threshold (or an unseen element)."""
        log_likelihood = self.log_likelihood(features, symbols)
        thresholds = np.array([self.elements[s].threshold if s in self.elements else np.inf for s in symbols])
        return log_likelihood < thresholds

    def summary(self) -> dict:
        """Return what people query (the node's attributes, the report's table): JSON-able, per element."""
        return {
            'elements': list(self.elements),
            'n_components': self.n_components,
            'thresholds': self.thresholds,
            'training_atoms': {s: int(len(e.training_log_likelihood)) for s, e in self.elements.items()},
            'dimensions': {s: e.dimension for s, e in self.elements.items()},
            'bic': {s: {str(m): v for m, v in e.bic.items()} for s, e in self.elements.items()},
            'calibration': self.calibration,
            'calibrated': self.calibrated,
            'feature_size': self.feature_size,
        }

    # -- serialisation ---------------------------------------------------------------------------------
    def header(self) -> dict:
        """Return the JSON header of the file: what a reader needs besides the arrays."""
        return {
            'format': 'mofal-density-model',
            'version': FORMAT_VERSION,
            'feature_size': self.feature_size,
            'elements': list(self.elements),
            'n_components': self.n_components,
            'thresholds': self.thresholds,
            'pca': {s: (None if e.pca_components is None else int(e.dimension)) for s, e in self.elements.items()},
            'bic': {s: {str(m): v for m, v in e.bic.items()} for s, e in self.elements.items()},
            'calibration': self.calibration,
            'reg_covar': {s: e.reg_covar for s, e in self.elements.items()},
            'pca_explained_variance': {s: e.pca_explained_variance for s, e in self.elements.items()},
            'settings': self.settings,
        }

    def to_bytes(self) -> bytes:
        """Serialise to the ``.npz`` format described in the module docstring."""
        arrays = {'header': np.array(json.dumps(self.header(), sort_keys=True))}
        for symbol, element in self.elements.items():
            for name in ('weights', 'means', 'covariances', 'precisions_cholesky', 'training_log_likelihood'):
                arrays[f'{symbol}/{name}'] = getattr(element, name)
            if element.pca_components is not None:
                arrays[f'{symbol}/pca_mean'] = element.pca_mean
                arrays[f'{symbol}/pca_components'] = element.pca_components
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` file."""
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def from_bytes(cls, content: bytes) -> DensityModel:
        """Read what :meth:`to_bytes` wrote; never unpickles anything."""
        with np.load(io.BytesIO(content), allow_pickle=False) as data:
            header = json.loads(str(data['header']))
            if header.get('format') != 'mofal-density-model' or header.get('version') != FORMAT_VERSION:
                raise ValueError(f'not a mofal density model of format version {FORMAT_VERSION}.')
            elements = {}
            for symbol in header['elements']:
                has_pca = f'{symbol}/pca_components' in data.files
                elements[symbol] = ElementMixture(
                    weights=data[f'{symbol}/weights'],
                    means=data[f'{symbol}/means'],
                    covariances=data[f'{symbol}/covariances'],
                    precisions_cholesky=data[f'{symbol}/precisions_cholesky'],
                    threshold=float(header['thresholds'][symbol]),
                    training_log_likelihood=data[f'{symbol}/training_log_likelihood'],
                    pca_mean=data[f'{symbol}/pca_mean'] if has_pca else None,
                    pca_components=data[f'{symbol}/pca_components'] if has_pca else None,
                    bic={int(m): v for m, v in header['bic'][symbol].items()},
                    calibration=header.get('calibration', {}).get(symbol),
                    reg_covar=header.get('reg_covar', {}).get(symbol),
                    pca_explained_variance=header.get('pca_explained_variance', {}).get(symbol),
                )
        return cls(elements=elements, feature_size=int(header['feature_size']), settings=header['settings'])

    @classmethod
    def load(cls, path: str | Path) -> DensityModel:
        """Read an ``.npz`` file written by :meth:`save`."""
        return cls.from_bytes(Path(path).read_bytes())
