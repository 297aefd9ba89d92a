"""Benchmark: build S_sup, its bond graph and blocks, and extract 150 clusters around random atoms.

Run: .venv/bin/python benchmarks/clusters.py [--seed 0] [--n 150]
Prints the time of every step and the atom counts. Goal: everything under 60 s on 2 cores.
"""

import argparse
import time

import numpy as np

from aiida_mofal.clusters.extract import extract_clusters
from aiida_mofal.structures.blocks import find_blocks
from aiida_mofal.structures.bonds import bond_graph
from aiida_mofal.structures.charges import formal_charges
from aiida_mofal.structures.uio66 import build_uio66


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--n', type=int, default=150, help='clusters to extract')
    args = parser.parse_args()

    steps = {}
    t = time.perf_counter()
    atoms = build_uio66(4, linker=0.2, hf=0.2, brick=0.1, seed=args.seed)
    steps['build S_sup (4x4x4, 0.2-0.1-0.2)'] = time.perf_counter() - t
    info = atoms.info
    print(f'S_sup seed {args.seed}: {len(atoms)} atoms (paper: 22,052; pristine 29,184)')
    print(
        f'  linker vacancies {info["n_linker_vacancies"]}, bricks removed {info["n_bricks_removed"]}, '
        f'linkers gone {info["n_linkers_removed"]}, dropped bricks {info["n_bricks_dropped"]}, Hf {info["n_hf"]}'
    )
    print(f'  characterisation c_hf-c_brick-c_linker = {info["c_hf"]:.2f}-{info["c_brick"]:.2f}-{info["c_linker"]:.2f}')

    t = time.perf_counter()
    graph = bond_graph(atoms)
    steps['bond graph'] = time.perf_counter() - t
    t = time.perf_counter()
    blocks = find_blocks(atoms, graph)
    steps['building blocks'] = time.perf_counter() - t
    t = time.perf_counter()
    charge = formal_charges(atoms, graph).charge
    steps['formal charges (whole cell)'] = time.perf_counter() - t
    print(f'  {graph.n_bonds} bonds, {blocks.n_blocks} blocks, total formal charge {charge}')

    rng = np.random.default_rng(args.seed)
    flagged = rng.choice(len(atoms), 2 * args.n, replace=False)
    uncertainty = rng.random(len(atoms))
    t = time.perf_counter()
    clusters = extract_clusters(atoms, flagged, uncertainty=uncertainty, max_clusters=args.n, blocks=blocks)
    steps[f'extract {len(clusters)} clusters'] = time.perf_counter() - t
    sizes = np.array([len(c) for c in clusters])
    charges = np.array([c.info['charge'] for c in clusters])
    print(
        f'  clusters: {len(clusters)}, atoms min/median/max {sizes.min()}/{int(np.median(sizes))}/{sizes.max()}, '
        f'total {sizes.sum()}, charges {sorted(set(charges.tolist()))}'
    )
    print()
    for name, dt in steps.items():
        print(f'{name:<36s} {dt:7.2f} s')
    print(f'{"total":<36s} {sum(steps.values()):7.2f} s')


if __name__ == '__main__':
    main()
