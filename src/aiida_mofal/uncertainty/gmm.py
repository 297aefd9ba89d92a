"""Uncertainty from feature-space density: one Gaussian mixture per element (SCIENCE.md §2).

Fitting (:mod:`aiida_mofal.uncertainty.fitting`) uses scikit-learn's ``GaussianMixture`` (full covariances,
k-means initialisation with a fixed seed, so a fit is reproducible); the number of components of each
element's mixture is the one with the lowest BIC over ``1..max_components``. By default a PCA per element
(fitted on its training features) reduces MACE's 16-128-dimensional features to at most 16, the paper's 8-16
(SCIENCE.md §2): full covariances in 64-D cost 2,080 parameters per component, so BIC picks one component and
the mixture over-fits. Covariances are regularised relative to the data's spread (``reg_covar`` times the mean
variance).

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

Scoring speed: each mixture's whitening matrices are stacked into one d × M·d matrix when first used (derived
from the stored arrays, not stored), so a block of atoms needs one matrix product for all M components, and
:meth:`DensityModel.score` gives log-likelihoods and unknown flags in one pass (``benchmarks/features_gmm.py``).

Only numpy at import time: this module is copied next to the remote MD and scan scripts; fitting is not.
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
_CHUNK = 1024  # rows per BLAS call: the rows x M·d block of whitened differences stays in the CPU cache


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
    _factors: tuple | None = field(default=None, init=False, repr=False, compare=False)

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

    def factors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every component's whitening stacked in one matrix; derived from the stored arrays on first use, never saved.

        Rows ``[x − c, 1]`` times ``A = [P_1 … P_M; −b]`` ((d + 1) × M·d, ``b_k = (μ_k − c) P_k``) hold every
        component's ``y_k = (x − μ_k) P_k`` after one matrix product; ``c``, the weighted mean of the means, keeps
        ``x − c`` small (no digits cancel). ``constants`` are ``log w_k + log det P_k − d/2 log 2π``.
        Returns (c, A, constants).
        """
        if self._factors is None:
            precision = np.asarray(self.precisions_cholesky, dtype=float)
            m, d = precision.shape[:2]
            centre = np.asarray(self.weights, dtype=float) @ self.means
            stacked = np.empty((d + 1, m * d))
            stacked[:d] = precision.transpose(1, 0, 2).reshape(d, m * d)
            stacked[d] = -np.einsum('kd,kde->ke', self.means - centre, precision).reshape(m * d)
            log_det = np.log(np.diagonal(precision, axis1=1, axis2=2)).sum(axis=1)
            self._factors = (centre, stacked, np.log(self.weights) + log_det - 0.5 * d * _LOG_2PI)
        return self._factors

    def log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """Log density of each row of ``features`` under the mixture (numpy; equals sklearn's score_samples).

        Blocks of ``_CHUNK`` rows: one product with the stacked whitening gives every component's ``y_k``, one
        ``einsum`` their squared norms (the Mahalanobis terms), then a log-sum-exp over the components.
        """
        x = np.asarray(features, dtype=float)
        centre, stacked, constants = self.factors()
        m, d = len(constants), self.dimension
        result = np.empty(len(x))
        rows = np.ones((min(_CHUNK, len(x)), d + 1))
        for start in range(0, len(x), _CHUNK):
            block = rows[: min(_CHUNK, len(x) - start)]
            np.subtract(self.project(x[start : start + _CHUNK]), centre, out=block[:, :d])
            y = (block @ stacked).reshape(len(block), m, d)
            log_prob = np.einsum('nkd,nkd->nk', y, y)
            log_prob *= -0.5
            log_prob += constants
            if m == 1:
                result[start : start + _CHUNK] = log_prob[:, 0]
                continue
            top = log_prob.max(axis=1)
            log_prob -= top[:, None]
            np.exp(log_prob, out=log_prob)
            result[start : start + _CHUNK] = top + np.log(log_prob.sum(axis=1))
        return result


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
        from aiida_mofal.uncertainty.fitting import fit_element  # scikit-learn: not needed (nor shipped) to score

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
            elements[symbol] = fit_element(features[selected], None if groups is None else groups[selected], settings)
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

    def score(self, features: np.ndarray, symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per-atom log-likelihood and unknown flag in one pass: what a scan needs (−inf and True for unseen elements).

        One mixture evaluation per element on its rows (no Python loop over atoms); :meth:`log_likelihood`,
        :meth:`uncertainty` and :meth:`is_unknown` each cost the same, so call this once when both are needed.
        """
        features, symbols = np.asarray(features), np.asarray(symbols)
        if features.ndim != 2 or features.shape[1] != self.feature_size or len(features) != len(symbols):
            raise ValueError(
                f'expected N × {self.feature_size} features and N symbols, got {features.shape} and {len(symbols)}; '
                'features must come from the MACE model this density model was fitted for.'
            )
        log_likelihood = np.full(len(features), -np.inf)
        unknown = np.ones(len(features), dtype=bool)
        for symbol, element in self.elements.items():
            rows = np.flatnonzero(symbols == symbol)
            if rows.size:
                log_likelihood[rows] = element.log_likelihood(features[rows])
                unknown[rows] = log_likelihood[rows] < element.threshold
        return log_likelihood, unknown

    def log_likelihood(self, features: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
        """Per-atom log-likelihood; −inf for elements the model was not fitted on."""
        return self.score(features, symbols)[0]

    def uncertainty(self, features: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
        """Per-atom uncertainty = negative log-likelihood (+inf for unseen elements)."""
        return -self.score(features, symbols)[0]

    def is_unknown(self, features: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
        """Return True for atoms whose log-likelihood is below their element's threshold (or an unseen element)."""
        return self.score(features, symbols)[1]

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
