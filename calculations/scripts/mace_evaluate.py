"""Evaluate a MACE model on labelled structures, or scan structures for unknown atoms (stand-alone).

Run by the ``mofal.mace.evaluate`` CalcJob on the remote machine as ``python mace_evaluate.py
config.json``. Needs mace-torch, torch, ase and numpy -- never AiiDA. The CalcJob ships three pure modules
beside this script, ``mofal_metrics.py``, ``mofal_features.py`` and ``mofal_gmm.py`` (copies of
``aiida_mofal.mlp.metrics``, ``aiida_mofal.mlp.features`` and ``aiida_mofal.uncertainty.gmm``), so that the
remote computes exactly what the local calcfunctions compute.

``config.json`` keys: ``mode`` (``evaluate`` or ``scan``), ``model`` (model file), ``structures`` (extxyz),
``device`` (``cpu``/``cuda``), ``dtype``, ``percentile`` (k of MAE_pk, evaluate), ``density_model`` (npz,
scan, optional), ``write_features`` (scan), ``max_atoms_per_batch``, ``max_atoms_per_chunk``.

Outputs: ``evaluate`` writes ``results.json`` (metrics) and ``errors.npz`` (per-structure and per-atom
reference/predicted labels); ``scan`` writes ``results.json`` (counts) and ``scan.npz``
(``structure_index``, ``numbers`` and, with a density model, ``log_likelihood``, ``uncertainty``,
``unknown``; with ``write_features``, ``features``). A failure exits non-zero with the reason on stderr.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # before the imports: the fixed cost of a job is part of what results.json reports

import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

try:  # noqa: E402  (on the remote: the copies shipped beside this script)
    import mofal_features as features_module
    import mofal_gmm as gmm_module
    import mofal_metrics as metrics_module
except ImportError:  # run from a checkout with aiida-mofal installed
    from aiida_mofal.mlp import features as features_module
    from aiida_mofal.mlp import metrics as metrics_module
    from aiida_mofal.uncertainty import gmm as gmm_module

MODES = ('evaluate', 'scan')


def _read_structures(path: str) -> list:
    from ase.io import read

    frames = read(path, index=':', format='extxyz')
    for atoms in frames:  # labels under ASE's own keys become MACE's REF_* keys, as in the data set reader
        if atoms.calc is not None:
            results = atoms.calc.results
            if 'energy' in results:
                atoms.info.setdefault('REF_energy', float(results['energy']))
            if 'forces' in results:
                atoms.arrays.setdefault('REF_forces', np.array(results['forces']))
            atoms.calc = None
        if 'REF_stress' in atoms.info:
            stress = np.asarray(atoms.info['REF_stress'], dtype=float).ravel()
            if stress.size == 9:
                stress = stress.reshape(3, 3)[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            atoms.info['REF_stress'] = stress
    return frames


def evaluate(config: dict, frames: list, timings: dict) -> dict:
    """Predict with MACE's ASE calculator and compute the metrics."""
    start = time.perf_counter()
    from mace.calculators import MACECalculator

    timings['mace_import_s'] = time.perf_counter() - start
    start = time.perf_counter()
    calculator = MACECalculator(
        model_paths=config['model'], device=config.get('device', 'cpu'), default_dtype=config['dtype']
    )
    timings['model_load_s'] = time.perf_counter() - start
    predictions = metrics_module.predict_labels(frames, calculator)
    errors = metrics_module.collect_errors(frames, predictions)
    np.savez_compressed('errors.npz', **errors.as_arrays())
    return metrics_module.compute_metrics(errors, k=float(config.get('percentile', 95.0)))


def scan(config: dict, frames: list, timings: dict) -> dict:
    """Last-layer features and, given a density model, per-atom uncertainty of every atom."""
    start = time.perf_counter()
    extractor = features_module.FeatureExtractor(
        config['model'],
        device=config.get('device', 'cpu'),
        dtype=config.get('dtype'),
        max_atoms_per_batch=int(config.get('max_atoms_per_batch', 5000)),
        max_atoms_per_chunk=config.get('max_atoms_per_chunk'),
    )
    timings['model_load_s'] = time.perf_counter() - start  # with the MACE imports
    features = np.concatenate(extractor.features_many(frames))
    symbols = [s for atoms in frames for s in atoms.get_chemical_symbols()]
    arrays = {
        'structure_index': np.concatenate([np.full(len(atoms), i) for i, atoms in enumerate(frames)]),
        'numbers': np.concatenate([atoms.numbers for atoms in frames]),
    }
    summary = {'structures': len(frames), 'atoms': int(len(features)), 'feature_size': int(features.shape[1])}
    if config.get('write_features'):
        arrays['features'] = features
    if config.get('density_model'):
        density = gmm_module.DensityModel.load(config['density_model'])
        log_likelihood, unknown = density.score(features, symbols)  # one scoring for both
        arrays.update({'log_likelihood': log_likelihood, 'uncertainty': -log_likelihood, 'unknown': unknown})
        per_element = {}
        for symbol in sorted(set(symbols)):
            selected = np.asarray(symbols) == symbol
            per_element[symbol] = {'atoms': int(selected.sum()), 'unknown_atoms': int(unknown[selected].sum())}
        unknown_per_structure = np.bincount(arrays['structure_index'][unknown], minlength=len(frames))
        summary.update(
            {
                'unknown_atoms': int(unknown.sum()),
                'unknown_fraction': float(unknown.mean()) if unknown.size else 0.0,
                'structures_with_unknown_atoms': int((unknown_per_structure > 0).sum()),
                'per_element': per_element,
            }
        )
    np.savez_compressed('scan.npz', **arrays)
    return summary


def main(argv: list[str]) -> int:
    """Read the configuration, run the mode, write ``results.json``."""
    if len(argv) != 2:
        print('usage: python mace_evaluate.py config.json', file=sys.stderr)
        return 2
    config = json.loads(Path(argv[1]).read_text())
    mode = config.get('mode')
    if mode not in MODES:
        print(f'mode must be one of {MODES}, got {mode!r}', file=sys.stderr)
        return 2
    warnings.simplefilter('ignore')
    start = time.perf_counter()
    timings = {'script_imports_s': start - _STARTED}
    frames = _read_structures(config['structures'])
    timings['read_s'] = time.perf_counter() - start
    results = (evaluate if mode == 'evaluate' else scan)(config, frames, timings)
    timings['total_s'] = time.perf_counter() - _STARTED
    results = {'mode': mode, **results, 'wall_time_s': time.perf_counter() - start, 'timings': timings}
    Path('results.json').write_text(json.dumps(metrics_module.json_safe(results), indent=1, sort_keys=True))
    steps = ', '.join(f'{key[:-2]} {value:.1f} s' for key, value in timings.items())
    print(f'{mode}: {len(frames)} structures done ({steps})')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
