"""Fit the density model of a MACE model on a data set: a provenance step from (model, data set)."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data.dataset import DatasetData
from aiida_mofal.data.density_model import DensityModelData, feature_extractor_for
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.uncertainty.gmm import DensityModel

__all__ = ['check_density_inputs', 'fit_density_model']


def check_density_inputs(model: MaceModelData, dataset: DatasetData, settings: dict | None) -> dict:
    """Validate before anything runs; returns the full settings. Errors name the problem and the fix."""
    merged = DensityModel.validate_settings(settings)
    model.require_elements(dataset.elements, what=f'data set {dataset.pk}')
    if not dataset.count:
        raise ValueError(f'data set {dataset.pk} is empty; a density model needs training atoms.')
    return merged


@calcfunction
def fit_density_model(model: MaceModelData, dataset: DatasetData, settings: orm.Dict | None = None) -> DensityModelData:
    """Fit per-element Gaussian mixtures on ``model``'s last-layer features of the atoms of ``dataset``.

    ``dataset`` should be the model's training set: the density then says which environments the model
    has seen. ``settings`` (all optional): ``max_components`` (8), ``pca_components`` (16; None: no PCA),
    ``threshold_percentile`` (1.0), ``seed`` (0), ``reg_covar`` (1e-2, relative), ``max_atoms_per_element``
    (None: all; otherwise each mixture is fitted on a seeded random subsample of that size),
    ``calibration_fraction`` (0.2 of the configurations held out for the calibration check).
    """
    options = check_density_inputs(model, dataset, settings.get_dict() if settings is not None else None)
    frames = dataset.get_atoms()
    features = feature_extractor_for(model).features_many(frames)
    symbols = [symbol for atoms in frames for symbol in atoms.get_chemical_symbols()]
    groups = np.concatenate([np.full(len(atoms), index) for index, atoms in enumerate(frames)])
    density = DensityModel.fit(np.concatenate(features), symbols, groups=groups, **options)
    return DensityModelData(density, model=model)
