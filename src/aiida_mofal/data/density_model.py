"""``mofal.density_model``: per-element Gaussian mixtures on the features of one MACE model.

Features are meaningful for one model only (SCIENCE.md §1), so the node records the uuid and sha256 of
the ``mofal.mace_model`` it was fitted for and refuses to score with another. The mixtures live as one
``.npz`` file (numpy arrays + a JSON header, no pickles; format in :mod:`aiida_mofal.uncertainty.gmm`)
in the node's repository; attributes hold what people query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from aiida import orm
from ase import Atoms

from aiida_mofal.uncertainty.gmm import DensityModel

__all__ = ['DensityModelData', 'feature_extractor_for']


def feature_extractor_for(model, device: str = 'cpu', **kwargs):
    """Return a :class:`~aiida_mofal.mlp.features.FeatureExtractor` for a ``mofal.mace_model`` node."""
    from aiida_mofal.mlp.features import FeatureExtractor

    return FeatureExtractor(model.get_module(), device=device, dtype=model.base.attributes.get('dtype'), **kwargs)


class DensityModelData(orm.Data):
    """The density model of one MACE model: per-element GMMs (+ PCA) and unknown-atom thresholds.

    Attributes: ``elements``, ``n_components`` and ``thresholds`` (log-likelihood, per element),
    ``training_atoms`` (per element), ``pca_components`` (the setting), ``dimensions`` (per element, after
    PCA), ``bic`` (per element: BIC per number of components tried), ``calibration`` (per element: the
    held-out check) and ``calibrated`` (False when an element over-flags held-out atoms), ``feature_size``,
    ``settings``, ``model_uuid``, ``model_sha256``, ``sha256`` of the file.
    """

    FILENAME = 'density_model.npz'

    def __init__(self, density_model: DensityModel, *, model: orm.Data | None = None, **kwargs):
        super().__init__(**kwargs)
        if model is not None and model.base.attributes.get('num_channels') not in (None, density_model.feature_size):
            raise ValueError(
                f'the density model works on {density_model.feature_size} features but the MACE model has '
                f'{model.base.attributes.get("num_channels")} channels per layer; they do not belong together.'
            )
        content = density_model.to_bytes()
        self.base.repository.put_object_from_bytes(content, self.FILENAME)
        self.base.attributes.set_many(
            {
                **density_model.summary(),
                'pca_components': density_model.settings.get('pca_components'),
                'settings': dict(density_model.settings),
                'model_uuid': None if model is None else model.uuid,
                'model_sha256': None if model is None else model.base.attributes.get('sha256'),
                'sha256': hashlib.sha256(content).hexdigest(),
            }
        )
        self._density_model = density_model

    @property
    def elements(self) -> list[str]:
        """Elements with a mixture (any other element is infinitely uncertain)."""
        return self.base.attributes.get('elements')

    @property
    def thresholds(self) -> dict[str, float]:
        """Per element: log-likelihood below which an atom is unknown."""
        return self.base.attributes.get('thresholds')

    @property
    def model_uuid(self) -> str | None:
        """UUID of the ``mofal.mace_model`` whose features this density model describes."""
        return self.base.attributes.get('model_uuid')

    def get_density_model(self) -> DensityModel:
        """Return the science object (:class:`~aiida_mofal.uncertainty.gmm.DensityModel`)."""
        cached = getattr(self, '_density_model', None)
        if cached is None:
            cached = DensityModel.from_bytes(self.base.repository.get_object_content(self.FILENAME, mode='rb'))
            self._density_model = cached
        return cached

    def write(self, path: str | Path) -> Path:
        """Copy the ``.npz`` file to ``path``."""
        path = Path(path)
        path.write_bytes(self.base.repository.get_object_content(self.FILENAME, mode='rb'))
        return path

    def check_model(self, model: orm.Data) -> None:
        """Raise a ValueError unless ``model`` is the MACE model this density model was fitted for."""
        expected = self.base.attributes.get('model_sha256')
        if expected is not None and model.base.attributes.get('sha256') != expected:
            raise ValueError(
                f'density model {self.pk} was fitted for MACE model {self.model_uuid}, not {model.uuid}; '
                'features of different models are not comparable: fit a density model for this one '
                '(`mofal density fit MODEL DATASET`).'
            )

    def get_model(self) -> orm.Data:
        """Load the ``mofal.mace_model`` node this density model belongs to."""
        if self.model_uuid is None:
            raise ValueError(f'density model {self.pk} does not record its MACE model; pass the model explicitly.')
        return orm.load_node(self.model_uuid)

    def score(self, frames: Atoms | Sequence[Atoms], model: orm.Data | None = None, **extractor_options) -> list[dict]:
        """Score each structure: per-atom ``uncertainty``, ``log_likelihood``, ``unknown`` and ``features``.

        ``model`` defaults to the MACE model node recorded at fitting time; another model is refused.
        """
        if isinstance(frames, Atoms):
            frames = [frames]
        model = model if model is not None else self.get_model()
        self.check_model(model)
        density = self.get_density_model()
        extractor = feature_extractor_for(model, **extractor_options)
        results = []
        for atoms, features in zip(frames, extractor.features_many(frames)):
            symbols = atoms.get_chemical_symbols()
            log_likelihood, unknown = density.score(features, symbols)  # one scoring for both
            results.append(
                {
                    'features': features,
                    'log_likelihood': log_likelihood,
                    'uncertainty': -log_likelihood,
                    'unknown': unknown,
                }
            )
        return results

    @staticmethod
    def summary_of(results: Sequence[dict]) -> dict:
        """Count atoms and unknown atoms in :meth:`score` results."""
        unknown = np.concatenate([r['unknown'] for r in results]) if results else np.empty(0, bool)
        return {'atoms': int(unknown.size), 'unknown_atoms': int(unknown.sum())}
