"""Error metrics of an interatomic potential against reference labels (SCIENCE.md §5, cluster paper §3).

Everything here is numpy on arrays and :class:`ase.Atoms`; no AiiDA, no torch. The module is also copied
next to the remote evaluation script (``calculations/scripts/mace_evaluate.py``), so it must stay free of
``aiida_mofal`` imports.

Units are in every key: energies in eV (``_ev``) or eV/atom (``_ev_per_atom``), forces in eV/Å
(``_ev_per_a``), stresses in eV/Å³ (``_ev_per_a3``) and GPa (``_gpa``). Errors are prediction minus
reference.

Definitions (the choices where the paper is vague are stated here and in ``docs/guide/evaluation.md``):

* **MAE_pk** -- the mean of the absolute force-component errors that are *at or above* the k-th
  percentile of all absolute force-component errors (numpy's linear interpolation between order
  statistics). With "at or above", k = 0 is the MAE and k = 100 the maximum error exactly.
* **ΔE_i** = (E_pred − E_ref) / N_atoms of structure i; **ΔE_avg** is their mean and **ΔE_std** their
  population standard deviation (ddof = 0), i.e. the per-atom energy RMSE after removing the mean offset.
* Force MAE/RMSE are over Cartesian components; per element they are over the components of the atoms of
  that element. Stress metrics are over the six Voigt components of the structures that carry a stress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

__all__ = [
    'EV_PER_A3_TO_GPA',
    'ErrorData',
    'collect_errors',
    'compute_metrics',
    'delta_e_statistics',
    'json_safe',
    'mae',
    'mae_pk',
    'predict_labels',
    'rmse',
]

ENERGY_KEY = 'REF_energy'
FORCES_KEY = 'REF_forces'
STRESS_KEY = 'REF_stress'
EV_PER_A3_TO_GPA = 160.21766208


def mae(errors) -> float:
    """Mean absolute value of ``errors`` (any shape); NaN for an empty array."""
    errors = np.abs(np.asarray(errors, dtype=float)).ravel()
    return float(errors.mean()) if errors.size else float('nan')


def rmse(errors) -> float:
    """Root mean square of ``errors`` (any shape); NaN for an empty array."""
    errors = np.asarray(errors, dtype=float).ravel()
    return float(np.sqrt(np.mean(errors**2))) if errors.size else float('nan')


def mae_pk(errors, k: float = 95.0) -> float:
    """Mean of the absolute errors at or above their k-th percentile (the paper's MAE_pk).

    ``k = 0`` gives the MAE, ``k = 100`` the maximum absolute error; ``k = 95`` (MAE_p95) measures the
    tail that an average hides.
    """
    if not 0.0 <= float(k) <= 100.0:
        raise ValueError(f'percentile k must be within [0, 100], got {k}.')
    errors = np.abs(np.asarray(errors, dtype=float)).ravel()
    if not errors.size:
        return float('nan')
    threshold = np.percentile(errors, float(k))
    return float(errors[errors >= threshold].mean())


def delta_e_statistics(energy_pred, energy_ref, natoms) -> tuple[float, float]:
    """Return (ΔE_avg, ΔE_std) in eV/atom of the per-atom energy errors of a set of structures."""
    delta = (np.asarray(energy_pred, dtype=float) - np.asarray(energy_ref, dtype=float)) / np.asarray(natoms)
    if not delta.size:
        return float('nan'), float('nan')
    return float(delta.mean()), float(delta.std())


@dataclass
class ErrorData:
    """Reference and predicted labels of a set of structures, flattened into arrays.

    Per structure (length S): ``natoms``, ``config_type``, ``energy_ref``/``energy_pred`` (eV, NaN when
    unlabelled), ``stress_ref``/``stress_pred`` (S × 6 eV/Å³, NaN rows when absent). Per atom (length A,
    structures concatenated in order): ``structure_index``, ``numbers``, ``forces_ref``/``forces_pred``
    (A × 3 eV/Å, NaN when unlabelled). Kept whole so that error maps and parity plots can be drawn later.
    """

    natoms: np.ndarray
    config_type: np.ndarray
    energy_ref: np.ndarray
    energy_pred: np.ndarray
    stress_ref: np.ndarray
    stress_pred: np.ndarray
    structure_index: np.ndarray
    numbers: np.ndarray
    forces_ref: np.ndarray
    forces_pred: np.ndarray
    extra: dict = field(default_factory=dict)

    ARRAYS = (
        'natoms',
        'config_type',
        'energy_ref',
        'energy_pred',
        'stress_ref',
        'stress_pred',
        'structure_index',
        'numbers',
        'forces_ref',
        'forces_pred',
    )

    @property
    def energy_error_per_atom(self) -> np.ndarray:
        """ΔE_i = (E_pred − E_ref) / N_atoms per structure, eV/atom."""
        return (self.energy_pred - self.energy_ref) / self.natoms

    @property
    def force_error(self) -> np.ndarray:
        """Per-atom force error vectors F_pred − F_ref, eV/Å (A × 3)."""
        return self.forces_pred - self.forces_ref

    @property
    def force_error_norm(self) -> np.ndarray:
        """Per-atom length of the force error vector, eV/Å: the quantity to colour an error map with."""
        return np.linalg.norm(self.force_error, axis=1)

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays (plus the derived per-atom errors) for an ``ArrayData`` or an ``.npz`` file."""
        arrays = {name: np.asarray(getattr(self, name)) for name in self.ARRAYS}
        arrays['config_type'] = arrays['config_type'].astype('U')
        arrays['energy_error_per_atom'] = self.energy_error_per_atom
        arrays['force_error'] = self.force_error
        arrays['force_error_norm'] = self.force_error_norm
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ErrorData:
        """Inverse of :meth:`as_arrays` (derived arrays are recomputed, not read)."""
        return cls(**{name: np.asarray(arrays[name]) for name in cls.ARRAYS})


def predict_labels(frames: Sequence[Atoms], calculator) -> list[dict]:
    """Predict energy, forces and (for periodic cells) stress of each frame with an ASE calculator.

    Stress is asked for only when the frame is periodic in all three directions; clusters have none.
    """
    predictions = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calculator
        result = {'energy': float(atoms.get_potential_energy()), 'forces': np.array(atoms.get_forces())}
        if atoms.pbc.all() and atoms.cell.rank == 3:
            result['stress'] = np.array(atoms.get_stress(voigt=True))
        predictions.append(result)
    return predictions


def collect_errors(frames: Sequence[Atoms], predictions: Sequence[Mapping]) -> ErrorData:
    """Pair the reference labels of ``frames`` (MACE's ``REF_*`` keys) with ``predictions``.

    ``predictions[i]`` holds ``energy`` (eV), ``forces`` (N × 3, eV/Å) and optionally ``stress`` (Voigt,
    eV/Å³, ASE sign), e.g. from :func:`predict_labels`.
    """
    if len(frames) != len(predictions):
        raise ValueError(f'{len(frames)} frames but {len(predictions)} predictions.')
    if not frames:
        raise ValueError('no structures to evaluate.')
    nan3 = np.full(3, np.nan)
    nan6 = np.full(6, np.nan)
    natoms, config_type, energy_ref, energy_pred, stress_ref, stress_pred = [], [], [], [], [], []
    structure_index, numbers, forces_ref, forces_pred = [], [], [], []
    for index, (atoms, predicted) in enumerate(zip(frames, predictions)):
        count = len(atoms)
        natoms.append(count)
        config_type.append(str(atoms.info.get('config_type', 'periodic' if atoms.pbc.all() else 'cluster')))
        energy_ref.append(float(atoms.info.get(ENERGY_KEY, np.nan)))
        energy_pred.append(float(predicted.get('energy', np.nan)))
        stress_ref.append(np.asarray(atoms.info.get(STRESS_KEY, nan6), dtype=float).reshape(6))
        stress_pred.append(np.asarray(predicted.get('stress', nan6), dtype=float).reshape(6))
        structure_index.append(np.full(count, index))
        numbers.append(atoms.numbers)
        reference = atoms.arrays.get(FORCES_KEY)
        forces_ref.append(np.tile(nan3, (count, 1)) if reference is None else np.asarray(reference, dtype=float))
        forces = np.asarray(predicted.get('forces', np.tile(nan3, (count, 1))), dtype=float)
        if forces.shape != (count, 3):
            raise ValueError(f'structure {index}: predicted forces have shape {forces.shape}, expected ({count}, 3).')
        forces_pred.append(forces)
    return ErrorData(
        natoms=np.array(natoms, dtype=int),
        config_type=np.array(config_type, dtype='U'),
        energy_ref=np.array(energy_ref),
        energy_pred=np.array(energy_pred),
        stress_ref=np.array(stress_ref),
        stress_pred=np.array(stress_pred),
        structure_index=np.concatenate(structure_index).astype(int),
        numbers=np.concatenate(numbers).astype(int),
        forces_ref=np.concatenate(forces_ref),
        forces_pred=np.concatenate(forces_pred),
    )


def _force_metrics(errors: np.ndarray, k: float, key: str) -> dict:
    """MAE, RMSE, MAE_pk and maximum of force-component errors, eV/Å; empty when nothing is labelled."""
    errors = errors[np.all(np.isfinite(errors), axis=1)] if errors.ndim == 2 else errors
    if not errors.size:
        return {}
    return {
        'force_components': int(errors.size),
        'force_mae_ev_per_a': mae(errors),
        'force_rmse_ev_per_a': rmse(errors),
        f'force_mae_p{key}_ev_per_a': mae_pk(errors, k),
        'force_max_ev_per_a': float(np.abs(errors).max()),
    }


def _subset_metrics(data: ErrorData, structures: np.ndarray, k: float, key: str) -> dict:
    """Energy, force and stress metrics of the structures selected by the boolean mask ``structures``."""
    metrics: dict = {'structures': int(structures.sum())}
    atoms = structures[data.structure_index]
    metrics['atoms'] = int(atoms.sum())

    energy_ok = structures & np.isfinite(data.energy_ref) & np.isfinite(data.energy_pred)
    if energy_ok.any():
        total = data.energy_pred[energy_ok] - data.energy_ref[energy_ok]
        per_atom = total / data.natoms[energy_ok]
        avg, std = delta_e_statistics(data.energy_pred[energy_ok], data.energy_ref[energy_ok], data.natoms[energy_ok])
        metrics.update(
            {
                'energy_mae_ev': mae(total),
                'energy_rmse_ev': rmse(total),
                'energy_mae_ev_per_atom': mae(per_atom),
                'energy_rmse_ev_per_atom': rmse(per_atom),
                'delta_e_avg_ev_per_atom': avg,
                'delta_e_std_ev_per_atom': std,
            }
        )
    metrics.update(_force_metrics(data.force_error[atoms], k, key))

    stress_labelled = np.all(np.isfinite(data.stress_ref), axis=1) & np.all(np.isfinite(data.stress_pred), axis=1)
    stress_ok = structures & stress_labelled
    if stress_ok.any():
        stress_errors = data.stress_pred[stress_ok] - data.stress_ref[stress_ok]
        metrics.update(
            {
                'stress_structures': int(stress_ok.sum()),
                'stress_mae_ev_per_a3': mae(stress_errors),
                'stress_rmse_ev_per_a3': rmse(stress_errors),
                'stress_mae_gpa': mae(stress_errors) * EV_PER_A3_TO_GPA,
                'stress_rmse_gpa': rmse(stress_errors) * EV_PER_A3_TO_GPA,
            }
        )
    return metrics


def _percentile_key(k: float) -> str:
    return f'{float(k):g}'.replace('.', '_')


def compute_metrics(data: ErrorData, k: float = 95.0) -> dict:
    """Return the metrics of :class:`ErrorData`: overall, per element (forces) and per ``config_type``.

    The MAE_pk key carries k, e.g. ``force_mae_p95_ev_per_a``; ``percentile_k`` says which k was used.
    """
    if not 0.0 <= float(k) <= 100.0:
        raise ValueError(f'percentile k must be within [0, 100], got {k}.')
    key = _percentile_key(k)
    everything = np.ones(len(data.natoms), dtype=bool)
    metrics = {'percentile_k': float(k), **_subset_metrics(data, everything, k, key)}

    per_element = {}
    force_error = data.force_error
    for number in sorted(set(data.numbers.tolist())):
        selected = data.numbers == number
        entry = {'atoms': int(selected.sum()), **_force_metrics(force_error[selected], k, key)}
        per_element[chemical_symbols[number]] = entry
    metrics['per_element'] = per_element

    metrics['per_config_type'] = {
        name: _subset_metrics(data, data.config_type == name, k, key) for name in sorted(set(data.config_type.tolist()))
    }
    return metrics


def json_safe(value):
    """Return ``value`` with numpy scalars as Python numbers and non-finite floats as None (JSON, AiiDA Dict)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if np.isfinite(value) else None
    return value
