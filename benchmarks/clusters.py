"""Benchmark: build S_sup, its bond graph and blocks, and extract 150 clusters around random atoms.

Run: .venv/bin/python benchmarks/clusters.py [--seed 0] [--n 150] [--preset] [--rattle 0.06]
Prints the time of every step and the atom counts. Goal: everything under 60 s on 2 cores.
``--preset``: the paper's S_sup (22,052 atoms, ``structures.presets``) instead of the fraction recipe.
``--rattle A``: also cut the clusters from a distorted frame (Gaussian displacements of A Å, a stand-in for an
MD frame), once with blocks recomputed from the frame and once with the target's blocks mapped onto it
(``map_blocks``), and print both cluster-size distributions.
``--forward``: also time the bare MACE forward pass on the same atoms (the random model of ``features_gmm.py``,
graph + energy without gradients) and print the extraction beside it, as a ratio in the same run.
"""

import argparse
import time

import numpy as np

from aiida_mofal.clusters.extract import extract_clusters
from aiida_mofal.structures.blocks import find_blocks
from aiida_mofal.structures.bonds import bond_graph
from aiida_mofal.structures.charges import formal_charges
from aiida_mofal.structures.uio66 import build_uio66


def timed(steps: dict, name: str, function, *args, **kwargs):
    """Return ``function(*args, **kwargs)`` and record its wall time in ``steps[name]`` (not when it raises)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    steps[name] = time.perf_counter() - start
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--n', type=int, default=150, help='clusters to extract')
    parser.add_argument('--preset', action='store_true', help="the paper's S_sup from exact counts")
    parser.add_argument('--rattle', type=float, default=0.0, help='Å: compare blocks on a distorted frame')
    parser.add_argument('--forward', action='store_true', help='time the bare MACE forward pass on the same atoms')
    args = parser.parse_args()

    steps = {}
    t = time.perf_counter()
    if args.preset:
        from aiida_mofal.structures.presets import build_uio66_preset

        atoms = build_uio66_preset('S_sup', seed=args.seed)
        steps['build S_sup (preset)'] = time.perf_counter() - t
    else:
        atoms = build_uio66(4, linker=0.2, hf=0.2, brick=0.1, seed=args.seed)
        steps['build S_sup (4x4x4, 0.2-0.1-0.2)'] = time.perf_counter() - t
    info = atoms.info
    print(f'S_sup seed {args.seed}: {len(atoms)} atoms (paper: 22,052; pristine 29,184)')
    print(
        f'  linker vacancies {info["n_linker_vacancies"]}, bricks removed {info["n_bricks_removed"]}, '
        f'linkers gone {info["n_linkers_removed"]}, dropped bricks {info["n_bricks_dropped"]}, Hf {info["n_hf"]}'
    )
    print(f'  characterisation c_hf-c_brick-c_linker = {info["c_hf"]:.2f}-{info["c_brick"]:.2f}-{info["c_linker"]:.2f}')

    graph = timed(steps, 'bond graph', bond_graph, atoms)
    blocks = timed(steps, 'building blocks', find_blocks, atoms, graph)
    charge = timed(steps, 'formal charges (whole cell)', formal_charges, atoms, graph).charge
    print(f'  {graph.n_bonds} bonds, {blocks.n_blocks} blocks, total formal charge {charge}')

    rng = np.random.default_rng(args.seed)
    flagged = rng.choice(len(atoms), 2 * args.n, replace=False)
    cut = {'uncertainty': rng.random(len(atoms)), 'max_clusters': args.n}
    t = time.perf_counter()
    clusters = extract_clusters(atoms, flagged, **cut, blocks=blocks)
    steps[f'extract {len(clusters)} clusters'] = time.perf_counter() - t
    sizes = np.array([len(c) for c in clusters])
    charges = np.array([c.info['charge'] for c in clusters])
    print(
        f'  clusters: {len(clusters)}, atoms min/median/max {sizes.min()}/{int(np.median(sizes))}/{sizes.max()}, '
        f'total {sizes.sum()}, charges {sorted(set(charges.tolist()))}'
    )
    if args.rattle:
        from aiida_mofal.structures.blocks import map_blocks

        frame = atoms.copy()
        frame.rattle(args.rattle, seed=args.seed + 1)
        own = timed(steps, 'blocks recomputed on the frame', find_blocks, frame)
        mapped = timed(steps, 'reference blocks mapped onto it', map_blocks, blocks, frame)
        print(f'  frame rattled {args.rattle} Å: {own.n_blocks} blocks recomputed, {mapped.n_blocks} mapped')
        for label, frame_blocks in (('recomputed', own), ('reference', mapped)):
            try:
                frame_clusters = timed(
                    steps, f'extract ({label} blocks)', extract_clusters, frame, flagged, **cut, blocks=frame_blocks
                )
            except ValueError as error:  # what the scan does with such a frame: skip it (no time recorded)
                print(f'  {label:<10} blocks: the frame cannot be cut ({error})')
                continue
            sizes = np.array([len(c) for c in frame_clusters])
            print(
                f'  {label:<10} blocks: {len(frame_clusters)} clusters, atoms min/median/p90/max {sizes.min()}/'
                f'{int(np.median(sizes))}/{int(np.percentile(sizes, 90))}/{sizes.max()}, '
                f'over 250: {(sizes > 250).sum()}'
            )
    print()
    for name, dt in steps.items():
        print(f'{name:<36s} {dt:7.2f} s')
    print(f'{"total":<36s} {sum(steps.values()):7.2f} s')
    if args.forward:
        _forward_side_by_side(atoms, steps)


def _forward_side_by_side(atoms, steps: dict) -> None:
    """Print the bare MACE forward pass on ``atoms`` beside the per-cycle extraction steps (same run)."""
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from features_gmm import bare_forward_seconds, build_model

    from aiida_mofal.mlp.features import FeatureExtractor

    with tempfile.TemporaryDirectory(prefix='mofal-bench-') as directory:
        model = build_model(Path(directory) / 'model.model', 16, 'float32')
        extractor = FeatureExtractor(model, max_atoms_per_batch=10**9)
        extractor.features(atoms[:64])  # warm-up
        cold = bare_forward_seconds(extractor, atoms)  # the first full-size pass pays the allocations
        forward = bare_forward_seconds(extractor, atoms)
    per_cycle = {name: dt for name, dt in steps.items() if name.startswith(('extract', 'reference blocks'))}
    print(
        f'\nbare MACE forward pass on the same {len(atoms)} atoms (16x0e+16x1o, float32): {forward:.2f} s '
        f'(the first, cold pass: {cold:.2f} s)'
    )
    for name, dt in per_cycle.items():
        print(f'{name:<36s} {dt:7.2f} s = {dt / forward:5.2f} x the forward pass')


if __name__ == '__main__':
    main()
