"""Read what a ``mace_run_train`` run left behind: its log, its results file and the wrapper's status file.

Pure Python (numpy only): the parser of ``mofal.mace.train`` (:mod:`aiida_mofal.calculations.parsers.mace_train`)
turns these into exit codes and output nodes; the tests call them on stored real outputs
(``tests/parsers/fixtures/mace_train``).

How a run ended is decided in this order (:func:`diagnose`): NaN/inf in the curve or the log, the wall time (the
wrapper stopped MACE at its deadline, or the scheduler signalled it), a non-zero return code, and last a
divergence (the final validation force RMSE more than :data:`DIVERGENCE_RATIO` times the best one).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    'DIVERGENCE_RATIO',
    'TrainingOutcome',
    'diagnose',
    'parse_error_tables',
    'parse_training_curve',
    'training_metrics',
]

DIVERGENCE_RATIO = 10.0  # final / best validation force RMSE above this: the run diverged

_HEADER_KEYS = {
    'RMSE E / meV / atom': 'rmse_e_per_atom_meV',
    'RMSE F / meV / A': 'rmse_f_meV_per_A',
    'relative F RMSE %': 'rel_rmse_f_percent',
    'MAE E / meV / atom': 'mae_e_per_atom_meV',
    'MAE F / meV / A': 'mae_f_meV_per_A',
    'relative F MAE %': 'rel_mae_f_percent',
    'RMSE E / meV': 'rmse_e_meV',
    'MAE E / meV': 'mae_e_meV',
    'RMSE Stress / meV / A^3': 'rmse_stress_meV_per_A3',
    'MAE Stress / meV / A^3': 'mae_stress_meV_per_A3',
}


def _slug(header: str) -> str:
    if header in _HEADER_KEYS:
        return _HEADER_KEYS[header]
    return re.sub(r'[^0-9a-zA-Z]+', '_', header.replace('%', 'percent')).strip('_').lower()


def parse_error_tables(log_text: str) -> list[dict]:
    """Return the error tables MACE prints at the end, in order, as ``{'kind', 'rows': {set: {metric: value}}}``.

    ``kind`` is ``train_valid`` or ``test``; set names lose MACE's ``_Default`` head suffix. MACE prints one
    pair of tables per model it evaluates (stage one, then stage two when swa is on).
    """
    tables = []
    lines = log_text.splitlines()
    for index, line in enumerate(lines):
        match = re.search(r'Error-table on (TRAIN and VALID|TEST):', line)
        if not match:
            continue
        kind = 'train_valid' if match.group(1) == 'TRAIN and VALID' else 'test'
        rows, header = {}, None
        for row in lines[index + 1 :]:
            if row.startswith('+'):
                continue
            if not row.startswith('|'):
                break
            cells = [cell.strip() for cell in row.strip().strip('|').split('|')]
            if header is None:
                header = [_slug(cell) for cell in cells]
                continue
            values = {}
            for key, cell in zip(header[1:], cells[1:]):
                try:
                    values[key] = float(cell)
                except ValueError:
                    values[key] = cell
            rows[re.sub(r'_Default$', '', cells[0])] = values
        tables.append({'kind': kind, 'rows': rows})
    return tables


def parse_training_curve(results_text: str) -> dict[str, np.ndarray]:
    """Return per-epoch validation errors from MACE's results file (JSON lines; eV, eV/Å).

    ``epoch`` -1 is MACE's evaluation before the first step; ``train_seconds`` sums the optimisation steps
    of each epoch.
    """
    evals, train_time = [], {}
    for line in results_text.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        epoch = -1 if entry.get('epoch') is None else int(entry['epoch'])
        if entry.get('mode') == 'eval':
            evals.append((epoch, entry))
        elif entry.get('mode') == 'opt':
            train_time[epoch] = train_time.get(epoch, 0.0) + float(entry.get('time', 0.0))
    if not evals:
        return {}
    keys = [
        key
        for key, value in evals[0][1].items()
        if isinstance(value, (int, float)) and key != 'epoch' and all(key in e for _, e in evals)
    ]
    curve = {'epoch': np.array([epoch for epoch, _ in evals], dtype=int)}
    for key in keys:
        curve[key] = np.array([float(entry[key]) for _, entry in evals])
    curve['train_seconds'] = np.array([train_time.get(epoch, 0.0) for epoch, _ in evals])
    return curve


@dataclass
class TrainingOutcome:
    """How a training run ended: ``kind`` is ``ok``, ``nan``, ``walltime``, ``failed``, ``diverged`` or ``no_status``.

    ``details`` holds what the exit message needs (``epoch``; ``elapsed``; ``code`` and ``error``; ``final`` and
    ``ratio``).
    """

    kind: str
    details: dict = field(default_factory=dict)


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    return lines[-1] if lines else 'no error message'


def diagnose(status: dict | None, curve: dict, log_text: str, stderr_text: str | None = None) -> TrainingOutcome:
    """Decide how a run ended from the wrapper's ``status``, the parsed ``curve``, the log and standard error."""
    if status is None:
        return TrainingOutcome('no_status')
    if curve:
        finite = np.isfinite(curve['loss'])
        for key in ('rmse_f', 'rmse_e_per_atom'):
            if key in curve:
                finite &= np.isfinite(curve[key])
        if not finite.all():
            return TrainingOutcome('nan', {'epoch': int(curve['epoch'][np.argmin(finite)])})
    if re.search(r'loss=\s*(nan|inf)', log_text, flags=re.IGNORECASE):
        return TrainingOutcome('nan', {'epoch': '(see log)'})
    if status.get('timed_out') or status.get('terminated_by_signal'):
        return TrainingOutcome('walltime', {'elapsed': status.get('elapsed_seconds', 0.0)})
    if status.get('returncode') != 0:
        return TrainingOutcome('failed', {'code': status.get('returncode'), 'error': _last_line(stderr_text)})
    if curve and 'rmse_f' in curve:
        trained = curve['rmse_f'][curve['epoch'] >= 0]
        if len(trained) and trained.min() > 0 and trained[-1] / trained.min() > DIVERGENCE_RATIO:
            ratio = float(trained[-1] / trained.min())
            return TrainingOutcome('diverged', {'final': float(trained[-1]), 'ratio': ratio})
    return TrainingOutcome('ok')


def training_metrics(log_text: str, curve: dict, status: dict) -> dict:
    """Return the ``metrics`` of a finished run: MACE's final error tables, epochs, timings, export readiness.

    Errors keep MACE's units (meV/atom, meV/Å, %); NaN entries are dropped (a Dict cannot store them).
    """
    tables = parse_error_tables(log_text)
    train_valid = [table['rows'] for table in tables if table['kind'] == 'train_valid']
    tests = [table['rows'] for table in tables if table['kind'] == 'test']
    metrics: dict = {'units': 'meV/atom for energies, meV/Å for forces, % for relative errors'}
    if train_valid:
        metrics.update(train_valid[-1])
        if len(train_valid) > 1:
            metrics['stage_one'] = train_valid[0]
    if tests:
        metrics['test'] = tests[-1]
    if curve:
        trained = curve['epoch'] >= 0
        metrics['epochs'] = int(trained.sum())
        seconds = curve['train_seconds'][trained]
        metrics['median_train_seconds_per_epoch'] = float(np.median(seconds)) if len(seconds) else None
        if 'rmse_f' in curve and trained.any():
            metrics['best_valid_rmse_f_eV_per_A'] = float(curve['rmse_f'][trained].min())
    metrics['elapsed_seconds'] = status.get('elapsed_seconds')
    available = bool(status.get('cuequivariance_available'))
    metrics['cuequivariance_available'] = available
    metrics['mliap_export'] = (
        'possible (mace_create_lammps_model --format mliap)'
        if available
        else 'not made: cuequivariance is not importable on the remote machine'
    )
    return {key: value for key, value in metrics.items() if not (isinstance(value, float) and math.isnan(value))}
