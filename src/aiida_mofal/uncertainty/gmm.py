"""Uncertainty from feature-space density: one Gaussian mixture per element (SCIENCE.md §2).

Fitting uses scikit-learn's ``GaussianMixture`` (full covariances, k-means initialisation with a fixed
seed, so a fit is reproducible); the number of components of each element's mixture is the one with the
lowest BIC over ``1..max_components``. An optional PCA (per element, fitted on the training features)
reduces the dimension first.

Scoring is plain numpy from the stored parameters, so the remote scan script needs neither scikit-learn
nor pickles: a :class:`DensityModel` is saved as an ``.npz`` of arrays plus one JSON header and loaded
with ``allow_pickle=False``. Format (version 1), for element ``X``:

* ``X/weights`` (M), ``X/means`` (M × d), ``X/covariances`` (M × d × d), ``X/precisions_cholesky``
  (M × d × d, scikit-learn's convention: ``y = (x − μ) @ P`` is standard normal);
* ``X/pca_mean`` (F) and ``X/pca_components`` (d × F) when a PCA was fitted;
* ``X/training_log_likelihood`` -- the training atoms' own log-likelihoods (for thresholds, histograms);
* ``header`` -- JSON text: format version, elements, feature size, thresholds, settings.

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

__all__ = ['DensityModel', 'ElementMixture', 'FORMAT_VERSION']

FORMAT_VERSION = 1
_LOG_2PI = float(np.log(2 * np.pi))


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


def _fit_element(
    features: np.ndarray,
    max_components: int,
    pca_components: int | None,
    threshold_percentile: float,
    seed: int,
    reg_covar: float,
    max_atoms: int | None = None,
) -> ElementMixture:
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    pca_mean = components = None
    x = features
    if max_atoms is not None and len(x) > max_atoms:  # fit on a seeded subsample; thresholds use every atom
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_atoms, replace=False))]
    if pca_components is not None:
        n = min(int(pca_components), x.shape[0], x.shape[1])
        pca = PCA(n_components=n, svd_solver='full', random_state=seed).fit(x)
        pca_mean, components = pca.mean_.copy(), pca.components_.copy()
        x = (x - pca_mean) @ components.T
    best, scores = None, {}
    for m in range(1, min(int(max_components), len(x)) + 1):
        mixture = GaussianMixture(
            n_components=m, covariance_type='full', reg_covar=reg_covar, random_state=seed, max_iter=500
        ).fit(x)
        scores[m] = float(mixture.bic(x))
        if best is None or scores[m] < scores[best.n_components]:
            best = mixture
    element = ElementMixture(
        weights=best.weights_.copy(),
        means=best.means_.copy(),
        covariances=best.covariances_.copy(),
        precisions_cholesky=best.precisions_cholesky_.copy(),
        threshold=0.0,
        training_log_likelihood=np.empty(0),
        pca_mean=pca_mean,
        pca_components=components,
        bic=scores,
    )
    own = element.log_likelihood(features)
    element.training_log_likelihood = own
    element.threshold = float(np.percentile(own, threshold_percentile))
    return element


@dataclass
class DensityModel:
    """Per-element Gaussian mixtures on the last-layer features of one MACE model."""

    elements: dict[str, ElementMixture]
    feature_size: int
    settings: dict = field(default_factory=dict)

    DEFAULTS = {
        'max_components': 8,
        'pca_components': None,
        'threshold_percentile': 1.0,
        'seed': 0,
        'reg_covar': 1e-6,
        'max_atoms_per_element': None,
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
            raise ValueError('reg_covar must be positive.')
        if merged['max_atoms_per_element'] is not None:
            if int(merged['max_atoms_per_element']) < 1:
                raise ValueError('max_atoms_per_element must be at least 1 (or None to fit on every atom).')
            merged['max_atoms_per_element'] = int(merged['max_atoms_per_element'])
        merged['max_components'] = int(merged['max_components'])
        merged['pca_components'] = None if merged['pca_components'] is None else int(merged['pca_components'])
        merged['threshold_percentile'] = float(merged['threshold_percentile'])
        merged['seed'] = int(merged['seed'])
        merged['reg_covar'] = float(merged['reg_covar'])
        return merged

    @classmethod
    def fit(cls, features: np.ndarray, symbols: Sequence[str], **settings) -> DensityModel:
        """Fit one mixture per element to N × F ``features`` of atoms with chemical ``symbols``.

        Settings: ``max_components`` (8; BIC scan over 1..M), ``pca_components`` (None),
        ``threshold_percentile`` (1.0), ``seed`` (0), ``reg_covar`` (1e-6, added to covariance diagonals),
        ``max_atoms_per_element`` (None: fit each mixture on at most this many randomly chosen atoms of the
        element -- the BIC scan grows with the atom count; the threshold still uses every training atom).
        """
        settings = cls.validate_settings(settings)
        features = np.asarray(features, dtype=float)
        symbols = np.asarray(symbols)
        if features.ndim != 2 or len(features) != len(symbols):
            raise ValueError(f'features must be N × F with one symbol per row; got {features.shape}, {len(symbols)}.')
        if not np.all(np.isfinite(features)):
            raise ValueError('features contain NaN or inf; the model or the structures are broken.')
        if not len(features):
            raise ValueError('no training atoms to fit a density model on.')
        elements = {}
        for symbol in sorted(set(symbols.tolist())):
            elements[symbol] = _fit_element(
                features[symbols == symbol],
                settings['max_components'],
                settings['pca_components'],
                settings['threshold_percentile'],
                settings['seed'],
                settings['reg_covar'],
                settings['max_atoms_per_element'],
            )
        return cls(elements=elements, feature_size=int(features.shape[1]), settings=settings)

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
                )
        return cls(elements=elements, feature_size=int(header['feature_size']), settings=header['settings'])

    @classmethod
    def load(cls, path: str | Path) -> DensityModel:
        """Read an ``.npz`` file written by :meth:`save`."""
        return cls.from_bytes(Path(path).read_bytes())
