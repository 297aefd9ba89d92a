"""Evaluate a MACE model on a data set; scan structures for unknown atoms.

Two routes to the same numbers:

* :func:`evaluate_model` -- a calcfunction, in the caller's process: for small sets (a held-out test set
  of a few hundred structures).
* :class:`MaceEvaluateCalculation` -- a CalcJob that runs ``scripts/mace_evaluate.py`` with a
  ``python-mace`` code on the remote machine (GPU for big sets). Mode ``evaluate`` returns the same
  ``metrics`` and ``errors`` as the calcfunction; mode ``scan`` returns per-atom uncertainty (given a
  ``mofal.density_model``) and optionally the last-layer features, for the active-learning scan step.

The script imports three pure modules that are shipped beside it (see the script's docstring), so the
remote runs exactly the code of :mod:`aiida_mofal.mlp.metrics`, :mod:`aiida_mofal.mlp.features` and
:mod:`aiida_mofal.uncertainty.gmm` without AiiDA or aiida-mofal installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data.dataset import DatasetData
from aiida_mofal.data.density_model import DensityModelData
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.mlp import features as features_module
from aiida_mofal.mlp import metrics as metrics_module
from aiida_mofal.uncertainty import gmm as gmm_module

from .script import SCRIPTS, ScriptCalculation, file_copy, write_model

__all__ = [
    'MaceEvaluateCalculation',
    'array_data',
    'check_evaluation_inputs',
    'evaluate_model',
    'validate_settings',
]

SETTINGS_DEFAULTS = {
    'mode': 'evaluate',
    'percentile': 95.0,
    'write_features': False,
    'device': 'cpu',
    'max_atoms_per_batch': 5000,
    'max_atoms_per_chunk': None,
}


def validate_settings(settings: dict | None) -> dict:
    """Return the full CalcJob settings; unknown keys and bad values raise a ValueError naming them."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(SETTINGS_DEFAULTS))
    if unknown:
        raise ValueError(f'unknown settings {unknown}; allowed: {sorted(SETTINGS_DEFAULTS)}.')
    merged = {**SETTINGS_DEFAULTS, **settings}
    if merged['mode'] not in ('evaluate', 'scan'):
        raise ValueError(f"settings['mode'] must be 'evaluate' or 'scan', got {merged['mode']!r}.")
    if not 0.0 <= float(merged['percentile']) <= 100.0:
        raise ValueError(f"settings['percentile'] (k of MAE_pk) must be within [0, 100], got {merged['percentile']}.")
    if merged['device'] not in ('cpu', 'cuda'):
        raise ValueError(f"settings['device'] must be 'cpu' or 'cuda', got {merged['device']!r}.")
    if int(merged['max_atoms_per_batch']) < 1:
        raise ValueError("settings['max_atoms_per_batch'] must be at least 1.")
    if merged['max_atoms_per_chunk'] is not None and int(merged['max_atoms_per_chunk']) < 1:
        raise ValueError("settings['max_atoms_per_chunk'] must be at least 1 or None.")
    return merged


def check_evaluation_inputs(
    model: MaceModelData,
    structures: DatasetData,
    density_model: DensityModelData | None = None,
    mode: str = 'evaluate',
    write_features: bool = False,
) -> None:
    """Refuse inputs that cannot give a result, before anything runs; the message says how to fix it."""
    model.require_elements(structures.elements, what=f'data set {structures.pk}')
    if not structures.count:
        raise ValueError(f'data set {structures.pk} is empty.')
    if mode == 'evaluate' and not {'energy', 'forces'} & set(structures.labels):
        raise ValueError(
            f'data set {structures.pk} has no energy or force labels to evaluate against; label it first '
            "(or use mode 'scan')."
        )
    if mode == 'scan' and density_model is None and not write_features:
        raise ValueError("mode 'scan' needs a density_model (uncertainty) or write_features=True (features).")
    if density_model is not None:
        density_model.check_model(model)


def array_data(arrays: dict[str, np.ndarray]) -> orm.ArrayData:
    """Put named numpy arrays into one ``ArrayData`` node."""
    node = orm.ArrayData()
    for name, array in arrays.items():
        node.set_array(name, np.asarray(array))
    return node


@calcfunction
def evaluate_model(model: MaceModelData, dataset: DatasetData, percentile: orm.Float | None = None) -> dict:
    """Predict ``dataset`` with ``model`` and return ``metrics`` (Dict) and ``errors`` (ArrayData).

    ``percentile`` is k of MAE_pk (default 95). ``errors`` keeps the reference and predicted labels of every
    structure and atom (parity plots, per-atom error maps); see :class:`aiida_mofal.mlp.metrics.ErrorData`.
    """
    check_evaluation_inputs(model, dataset)
    k = 95.0 if percentile is None else float(percentile.value)
    frames = dataset.get_atoms()
    predictions = metrics_module.predict_labels(frames, model.get_calculator())
    errors = metrics_module.collect_errors(frames, predictions)
    metrics = metrics_module.json_safe(metrics_module.compute_metrics(errors, k=k))
    return {'metrics': orm.Dict(metrics), 'errors': array_data(errors.as_arrays())}


class MaceEvaluateCalculation(ScriptCalculation):
    """Run ``mace_evaluate.py`` (modes ``evaluate`` and ``scan``) with a Python + MACE code."""

    SCRIPT = SCRIPTS / 'mace_evaluate.py'
    SHIPPED_MODULES = {
        'mofal_metrics.py': Path(metrics_module.__file__),
        'mofal_features.py': Path(features_module.__file__),
        'mofal_gmm.py': Path(gmm_module.__file__),
    }
    MODEL = 'model.model'
    STRUCTURES = 'structures.extxyz'
    DENSITY = 'density_model.npz'
    RESULTS = 'results.json'
    ARRAY_FILES = ('errors.npz', 'scan.npz')

    @classmethod
    def define(cls, spec):
        """Define inputs, outputs and exit codes."""
        super().define(spec)
        spec.input('model', valid_type=MaceModelData, help='The MACE model to evaluate or to take features from.')
        spec.input('structures', valid_type=DatasetData, help='Labelled set (evaluate) or any structures (scan).')
        spec.input(
            'density_model', valid_type=DensityModelData, required=False, help='For per-atom uncertainty (scan).'
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            help=f'Optional: {", ".join(f"{k} (default {v!r})" for k, v in SETTINGS_DEFAULTS.items())}.',
        )
        spec.inputs['metadata']['options']['parser_name'].default = 'mofal.mace.evaluate'

        spec.output('metrics', valid_type=orm.Dict, required=False, help='evaluate: the metrics (eV units in keys).')
        spec.output('errors', valid_type=orm.ArrayData, required=False, help='evaluate: labels, predictions, errors.')
        spec.output('summary', valid_type=orm.Dict, required=False, help='scan: counts of atoms and unknown atoms.')
        spec.output('scan', valid_type=orm.ArrayData, required=False, help='scan: per-atom uncertainty / features.')

        spec.exit_code(300, 'ERROR_MISSING_OUTPUT', message='the script wrote no {filename}.')
        spec.exit_code(310, 'ERROR_SCRIPT_FAILED', message='the evaluation script failed: {reason}')
        spec.exit_code(
            320,
            'ERROR_NON_FINITE_PREDICTIONS',
            message='the model predicted NaN or inf for {count} structures (first: {first}); the model is broken.',
        )

    @classmethod
    def validate_inputs(cls, value, ctx):
        """Check settings, elements, labels and the model/density-model pairing before submission."""
        try:
            settings = validate_settings(value['settings'].get_dict() if 'settings' in value else None)
            if 'model' in value and 'structures' in value:
                check_evaluation_inputs(
                    value['model'],
                    value['structures'],
                    value.get('density_model'),
                    settings['mode'],
                    settings['write_features'],
                )
        except ValueError as exception:
            return str(exception)
        return None

    def prepare_for_submission(self, folder):
        """Write the configuration, ship the script and its modules, copy model and structures."""
        settings = validate_settings(self.inputs.settings.get_dict() if 'settings' in self.inputs else None)
        model = self.inputs.model
        config = {
            'mode': settings['mode'],
            'model': self.MODEL,
            'structures': self.STRUCTURES,
            'device': settings['device'],
            'dtype': model.base.attributes.get('dtype'),
            'percentile': float(settings['percentile']),
            'write_features': bool(settings['write_features']),
            'max_atoms_per_batch': int(settings['max_atoms_per_batch']),
            'max_atoms_per_chunk': settings['max_atoms_per_chunk'],
            'density_model': self.DENSITY if 'density_model' in self.inputs else None,
        }
        write_model(folder, model, self.MODEL)  # MACE's file, made from the checked weights
        local_copy_list = [file_copy(self.inputs.structures, DatasetData.FILENAME, self.STRUCTURES)]
        if 'density_model' in self.inputs:
            local_copy_list.append(file_copy(self.inputs.density_model, DensityModelData.FILENAME, self.DENSITY))
        return self.script_calcinfo(
            folder,
            config,
            local_copy_list=local_copy_list,
            retrieve_list=[self.RESULTS],
            retrieve_temporary_list=self.ARRAY_FILES,  # parsed into ArrayData, not kept twice
            provenance_exclude_list=[self.MODEL],
        )
