"""Benchmark: last-layer features (fast path vs MACE's get_descriptors) and GMM scoring, 1k to 22k atoms.

Run: .venv/bin/python benchmarks/features_gmm.py [--sizes 1000 10000 22000] [--channels 16]
     [--dtype float32] [--slow-max-atoms 12000]

Structures: pristine UiO-66(Zr) cells repeated to about the requested size (1k: 912, 10k: 10,944 atoms);
a request of 20,000 atoms or more gets the paper's S_sup instead (``build_uio66_preset('S_sup')``: 22,052 atoms,
(0.21-0.13-0.40), Hf and formate caps). The
model is a randomly initialised MACE for H, C, O, Zr, Hf (two layers, ``{channels}x0e+{channels}x1o``,
r_max 5 Å): speed and memory depend on the architecture, not on the weights. Every measurement runs in a
fresh subprocess so that its peak memory (ru_maxrss) is its own; "peak" is the whole process, "Δ" the growth
over the process after loading the model and the structure and one warm-up call; times below 5,000 atoms are
the best of three. Beside the scan, the same worker times the **bare MACE forward pass** on the same atoms
(neighbour list, graph and an energy-only forward without gradients: the least any use of the model costs) and,
from 20,000 atoms, the extraction of 150 clusters with the target's blocks mapped onto the frame; the last table
prints the scan (warm features + ``DensityModel.score`` + extraction) against that forward pass (goal: within 1.2x,
GMM scoring at 1e6 atoms/s or more; both timed after the first, cold, features call, whose time is printed too),
and the scoring rate of the defaults' largest mixture (PCA to 16-D, 8 components). The slow path
(``MACECalculator.get_descriptors(num_layers=-1)``, all layers and the force backward pass) runs up to
``--slow-max-atoms`` atoms, and its last block is compared with the fast path's features. Default run:
56 s on 2 quiet cores, 136 s at load 4-6 (2026-12-03).
"""

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ELEMENTS = [1, 6, 8, 40, 72]  # H, C, O, Zr, Hf


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _repeats(atoms: int) -> int:
    """Best of three below 5,000 atoms, where one measurement is short enough to be noisy."""
    return 3 if atoms < 5000 else 1


def _shape(count: int) -> tuple[int, int, int]:
    """Near-cubic repeats (longest at most twice the shortest) with a product as close as possible to ``count``."""
    best = None
    for a, b, c in itertools.product(range(1, 9), repeat=3):
        if a <= b <= c <= 2 * a:
            score = (abs(a * b * c - count), c - a)
            if best is None or score < best[0]:
                best = (score, (a, b, c))
    return best[1]


def build_structure(target: int, rattle: bool = True):
    from aiida_mofal.structures.uio66 import uio66_unit_cell

    if target >= 20_000:  # the paper's S_sup (0.21-0.13-0.40, 22,052 atoms)
        from aiida_mofal.structures.presets import build_uio66_preset

        atoms = build_uio66_preset('S_sup', seed=0)
    else:
        atoms = uio66_unit_cell('Zr').repeat(_shape(max(1, round(target / 456))))
    if rattle:  # the frame; unrattled: the target whose bond graph gives the reference blocks
        atoms.rattle(0.03, seed=1)
    atoms.info.clear()
    return atoms


def bare_forward_seconds(extractor, atoms) -> float:
    """The bare MACE forward pass on ``atoms``: neighbour list, graph, energy only, no gradients (best of repeats).

    The least any use of the model on these atoms costs; the scan adds the column selection, the GMM scoring and
    the extraction to it.
    """
    import torch
    from mace.tools import torch_geometric, torch_tools

    seconds = []
    for _ in range(_repeats(len(atoms))):
        start = time.perf_counter()
        with torch_tools.default_dtype(extractor.dtype):
            batch = torch_geometric.Batch.from_data_list([extractor._graph(atoms)]).to(extractor.device)
            with torch.no_grad():
                extractor.model(batch.to_dict(), training=False, compute_force=False)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def extraction_seconds(
    atoms, target, uncertainty: np.ndarray, unknown: np.ndarray, count: int = 150
) -> tuple[float, int]:
    """Map the target's blocks onto the frame and cut ``count`` clusters around its most uncertain atoms.

    As the scan does (``campaign.scan.scan_walks`` with ``reference_topology``); the target's own blocks are found
    once per campaign and are not timed. With fewer unknown atoms than ``2 count``, the most uncertain ones stand in.
    """
    from aiida_mofal.clusters.extract import extract_clusters
    from aiida_mofal.structures.blocks import find_blocks, map_blocks

    reference = find_blocks(target)
    flagged = np.flatnonzero(unknown)
    if len(flagged) < 2 * count:
        flagged = np.argsort(-uncertainty)[: 2 * count]
    start = time.perf_counter()
    blocks = map_blocks(reference, atoms)
    clusters = extract_clusters(atoms, flagged, uncertainty=uncertainty, max_clusters=count, blocks=blocks)
    return time.perf_counter() - start, len(clusters)


def worst_case_scoring(atoms: int = 22_052, features: int = 64, dimension: int = 16, components: int = 8):
    """Best-of-five time of ``DensityModel.score`` for the defaults' largest mixture (random parameters, one element).

    The benchmark's own model has 16-D features and 2-3 components per element; the defaults allow PCA to 16-D and
    up to 8 components (``max_components``), the most a scan's scoring costs per atom.
    """
    from aiida_mofal.uncertainty.gmm import DensityModel, ElementMixture

    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(components, dimension, dimension))
    covariances = mixing @ mixing.transpose(0, 2, 1) / dimension + 0.05 * np.eye(dimension)
    element = ElementMixture(
        weights=np.full(components, 1.0 / components),
        means=rng.normal(0.0, 2.0, (components, dimension)),
        covariances=covariances,
        precisions_cholesky=np.stack([np.linalg.inv(np.linalg.cholesky(c)).T for c in covariances]),
        threshold=-30.0,
        training_log_likelihood=np.zeros(1),
        pca_mean=np.zeros(features),
        pca_components=np.linalg.qr(rng.normal(size=(features, dimension)))[0].T,
    )
    density = DensityModel(elements={'C': element}, feature_size=features)
    x, symbols = rng.normal(size=(atoms, features)), ['C'] * atoms
    seconds = []
    for _ in range(5):
        start = time.perf_counter()
        density.score(x, symbols)
        seconds.append(time.perf_counter() - start)
    return atoms, min(seconds)


def build_model(path: Path, channels: int, dtype: str) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.mlp.mace_models import build_mace_model

    return build_mace_model(path, atomic_numbers=ELEMENTS, hidden_irreps=f'{channels}x0e+{channels}x1o', dtype=dtype)


def worker(args) -> dict:
    """One measurement in this process: ``fast`` (features + scoring) or ``slow`` (get_descriptors)."""
    warnings.simplefilter('ignore')
    import mace  # noqa: F401

    atoms = build_structure(args.atoms)
    warm = atoms[:64]
    if args.worker == 'fast':
        from aiida_mofal.mlp.features import FeatureExtractor
        from aiida_mofal.uncertainty.gmm import DensityModel

        extractor = FeatureExtractor(args.model, max_atoms_per_batch=10**9)
        density = DensityModel.load(args.density)
        extractor.features(warm)
        baseline = _peak_mb()
        seconds = []
        for _ in range(_repeats(len(atoms))):
            start = time.perf_counter()
            features = extractor.features(atoms)
            seconds.append(time.perf_counter() - start)
        seconds = min(seconds)
        peak = _peak_mb()
        symbols = atoms.get_chemical_symbols()
        scoring = []
        for _ in range(5):  # a few milliseconds: best of five
            start = time.perf_counter()
            log_likelihood, unknown = density.score(features, symbols)  # what the scan calls, once per frame
            scoring.append(time.perf_counter() - start)
        scoring, uncertainty = min(scoring), -log_likelihood
        np.save(args.features, features)
        forward = bare_forward_seconds(extractor, atoms)
        start = time.perf_counter()  # the features again, now warm like the forward pass (cf. the first, cold call)
        extractor.features(atoms)
        warm = time.perf_counter() - start
        extract, clusters = (0.0, 0)
        if len(atoms) >= 20_000:
            extract, clusters = extraction_seconds(atoms, build_structure(args.atoms, False), uncertainty, unknown)
        return {
            'forward_seconds': forward,
            'extract_seconds': extract,
            'clusters': clusters,
            'atoms': len(atoms),
            'seconds': seconds,
            'warm_seconds': min(warm, seconds),
            'peak_mb': peak,
            'delta_mb': peak - baseline,
            'scoring_seconds': scoring,
            'unknown_fraction': float(unknown.mean()),
            'finite_uncertainty': bool(np.isfinite(uncertainty).all()),
        }
    from mace.calculators import MACECalculator

    calculator = MACECalculator(model_paths=str(args.model), device='cpu', default_dtype=args.dtype)
    calculator.get_descriptors(warm, num_layers=-1)
    baseline = _peak_mb()
    seconds = []
    for _ in range(_repeats(len(atoms))):
        start = time.perf_counter()
        descriptors = calculator.get_descriptors(atoms, invariants_only=True, num_layers=-1)
        seconds.append(time.perf_counter() - start)
    seconds = min(seconds)
    peak = _peak_mb()
    fast = np.load(args.features)
    last = descriptors[:, -fast.shape[1] :]
    return {
        'atoms': len(atoms),
        'seconds': seconds,
        'peak_mb': peak,
        'delta_mb': peak - baseline,
        'descriptor_columns': int(descriptors.shape[1]),
        'max_abs_difference': float(np.abs(last - fast).max()),
        'max_abs_feature': float(np.abs(fast).max()),
    }


def run_worker(kind: str, size: int, model: Path, density: Path, features: Path, dtype: str) -> dict:
    command = [sys.executable, __file__, '--worker', kind, '--atoms', str(size), '--model', str(model)]
    command += ['--density', str(density), '--features', str(features), '--dtype', dtype]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    if result.returncode != 0:
        raise RuntimeError(f'{kind} worker for {size} atoms failed:\n{result.stderr[-3000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def fit_density(model: Path, channels: int) -> tuple:
    """Fit the GMMs on two rattled UiO-66 cells (Zr, and 20% Hf): 912 training atoms."""
    from aiida_mofal.mlp.features import FeatureExtractor
    from aiida_mofal.structures.uio66 import build_uio66, uio66_unit_cell
    from aiida_mofal.uncertainty.gmm import DensityModel

    frames = []
    for seed, atoms in enumerate([uio66_unit_cell('Zr'), build_uio66(1, hf=0.2, seed=0)]):
        atoms = atoms.copy()
        atoms.rattle(0.04, seed=seed)
        frames.append(atoms)
    extractor = FeatureExtractor(model)
    features = np.concatenate(extractor.features_many(frames))
    symbols = [s for atoms in frames for s in atoms.get_chemical_symbols()]
    start = time.perf_counter()
    density = DensityModel.fit(features, symbols, max_components=8, seed=0)
    return density, time.perf_counter() - start, len(features)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[1000, 10000, 22000])
    parser.add_argument('--channels', type=int, default=16)
    parser.add_argument('--dtype', choices=['float32', 'float64'], default='float32')
    parser.add_argument('--slow-max-atoms', type=int, default=12_000, help='largest size for get_descriptors')
    parser.add_argument('--worker', choices=['fast', 'slow'], help=argparse.SUPPRESS)
    parser.add_argument('--atoms', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--model', type=Path, help=argparse.SUPPRESS)
    parser.add_argument('--density', type=Path, help=argparse.SUPPRESS)
    parser.add_argument('--features', type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    warnings.simplefilter('ignore')
    import torch

    total = time.perf_counter()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}')
    with tempfile.TemporaryDirectory(prefix='mofal-bench-') as directory:
        directory = Path(directory)
        model = build_model(directory / 'model.model', args.channels, args.dtype)
        density, fit_seconds, training_atoms = fit_density(model, args.channels)
        density_path = density.save(directory / 'density.npz')
        print(
            f'model: H C O Zr Hf, 2 layers, {args.channels}x0e+{args.channels}x1o, {args.dtype}; '
            f'GMM BIC scan 1..8 + fit on {training_atoms} atoms x {density.feature_size}-D: {fit_seconds:.1f} s '
            f'(components {density.n_components})'
        )
        header = (
            f'{"atoms":>7} | {"fast s":>7} {"atoms/s":>8} {"peak MB":>8} {"Δ MB":>7} | {"score s":>8} '
            f'{"atoms/s":>10} | {"slow s":>7} {"peak MB":>8} {"Δ MB":>7} | {"time ratio":>10} {"Δmem ratio":>10} '
            f'{"max|diff|":>9}'
        )
        print(header)
        print('-' * len(header))
        scans = []
        for size in args.sizes:
            features = directory / f'features_{size}.npy'
            fast = run_worker('fast', size, model, density_path, features, args.dtype)
            line = (
                f'{fast["atoms"]:>7} | {fast["seconds"]:>7.2f} {fast["atoms"] / fast["seconds"]:>8.0f} '
                f'{fast["peak_mb"]:>8.0f} {fast["delta_mb"]:>7.0f} | {fast["scoring_seconds"]:>8.4f} '
                f'{fast["atoms"] / fast["scoring_seconds"]:>10.0f} |'
            )
            if fast['atoms'] <= args.slow_max_atoms:
                slow = run_worker('slow', size, model, density_path, features, args.dtype)
                line += (
                    f' {slow["seconds"]:>7.2f} {slow["peak_mb"]:>8.0f} {slow["delta_mb"]:>7.0f} |'
                    f' {fast["seconds"] / slow["seconds"]:>10.2f} {fast["delta_mb"] / max(slow["delta_mb"], 1):>10.2f}'
                    f' {slow["max_abs_difference"]:>9.1e}'
                )
            else:
                line += f' {"(skipped: --slow-max-atoms)":>26} |'
            print(line, flush=True)
            scans.append(fast)
    print(
        'time ratio = fast / get_descriptors (same structure, same process setup); Δmem ratio likewise for '
        'the memory growth.'
    )
    print()
    header = (
        f'{"atoms":>7} | {"forward s":>9} | {"features s":>10} {"score s":>8} {"extract s":>9} {"scan s":>7} | '
        f'{"scan/forward":>12} {"score atoms/s":>13} | {"cold features s":>15}'
    )
    print(header)
    print('-' * len(header))
    for fast in scans:
        scan = fast['warm_seconds'] + fast['scoring_seconds'] + fast['extract_seconds']
        extract = f'{fast["extract_seconds"]:>9.2f}' if fast['clusters'] else f'{"-":>9}'
        print(
            f'{fast["atoms"]:>7} | {fast["forward_seconds"]:>9.2f} | {fast["warm_seconds"]:>10.2f} '
            f'{fast["scoring_seconds"]:>8.4f} {extract} {scan:>7.2f} | {scan / fast["forward_seconds"]:>12.2f} '
            f'{fast["atoms"] / fast["scoring_seconds"]:>13.2e} | {fast["seconds"]:>15.2f}'
        )
    atoms, seconds = worst_case_scoring()
    print(
        'forward = the bare MACE forward pass (graph + energy, no gradients) on the same atoms in the same process, '
        'after the first (cold) features call; features = a second, warm call (the cold one, with its allocations, '
        'in the last column: a scan pays it once per process); score = DensityModel.score, log-likelihoods and '
        'unknown flags in one pass; scan = features + score + extraction of 150 clusters (from 20,000 atoms; the '
        f"target blocks mapped onto the frame). Scoring at the defaults' largest mixture (64-D features, PCA to "
        f'16-D, 8 components, {atoms} atoms): {seconds:.4f} s = {atoms / seconds:.2e} atoms/s. '
        f'Goals: scan/forward <= 1.2, scoring >= 1e6 atoms/s. Total {time.perf_counter() - total:.0f} s.'
    )


if __name__ == '__main__':
    main()
