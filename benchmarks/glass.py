"""Benchmark: the glass analysis of a 2176-atom ZIF-4 glass over 200 frames (target: at most 30 s here).

Frames: the shipped ab initio glass (``ZIF-4_glass01_Gaillac2020.cif``, 272 atoms) as a 2x2x2 supercell (2176 atoms,
the paper's size) with independent Gaussian displacements per frame (σ = 0.03 Å per coordinate, seeded). The whole
default analysis runs (RDFs Zn–N, Zn–Zn, N–N to 10 Å; PMFs; coordination and N–Zn–N angles; density; primitive
rings to 16 Zn), and the time of each part is printed.

Baselines, measured in the same run:

- the neighbour list of the same atoms through ASE's ``neighbor_list`` (on a few frames; the RDF built from it is
  checked to be the same), as a ratio per frame;
- the ring search against matscipy's compiled shortest-path rings on the same net (Zn atoms, 6.7 Å cutoff). matscipy
  measures shortcuts on the cell's graph, right only for cells large compared with the rings; it is printed for the
  cost of a compiled search, not as an alternative.

Run: .venv/bin/python benchmarks/glass.py [--frames 200] [--baseline-frames 2]
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from ase.io import read

from aiida_mofal.analysis import rdf
from aiida_mofal.analysis.glass import analyse_glass

GLASS = Path(__file__).resolve().parent.parent / 'tests' / 'data_files' / 'structures' / 'ZIF-4_glass01_Gaillac2020.cif'


def build_frames(count: int, sigma: float = 0.03, seed: int = 0):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        supercell = read(GLASS).repeat((2, 2, 2))
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        frame = supercell.copy()
        frame.positions += rng.normal(scale=sigma, size=frame.positions.shape)
        frame.wrap()
        frames.append(frame)
    return frames


def ase_rdf(atoms, selection, edges):
    """The Zn–N RDF with ASE's neighbour list on the same atoms and the same normalisation."""
    from ase.neighborlist import neighbor_list

    subset = atoms[selection]
    i, j, d = neighbor_list('ijd', subset, edges[-1])
    zn_n = (subset.numbers[i] == 30) & (subset.numbers[j] == 7)  # full list: each Zn–N pair once in this direction
    counts, _ = np.histogram(d[zn_n], bins=edges)
    return rdf.rdf_from_counts(
        counts, (atoms.numbers == 30).sum(), (atoms.numbers == 7).sum(), False, atoms.get_volume(), edges
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=200)
    parser.add_argument('--baseline-frames', type=int, default=2)
    args = parser.parse_args()

    frames = build_frames(args.frames)
    load = os.getloadavg()
    print(f'{len(frames)} frames of {len(frames[0])} atoms; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')

    start = time.perf_counter()
    result = analyse_glass(frames)
    total = time.perf_counter() - start
    timings = result['timings_s']
    print(f'analysis of {len(frames)} frames: {total:.2f} s ({total / len(frames) * 1e3:.1f} ms per frame)')
    for part, seconds in timings.items():
        print(f'  {part:<20} {seconds:7.2f} s  {seconds / len(frames) * 1e3:7.2f} ms per frame')
    details = result['ring_details']
    print(
        f'  rings: {details["distinct_nets"]} distinct net(s) searched, to {details["max_size"]} Zn; '
        f'counts {result["rings"]}'
    )
    print(
        f'  coordination Zn-N {result["coordination"]["Zn-N"]:.3f}, N-Zn-N {result["angles"]["N-Zn-N"]["mean"]:.1f}°'
        f', density {result["density_g_cm3"]:.4f} ± {result["density_g_cm3_std"]:.4f} g/cm³'
    )

    # baseline 1: ASE's neighbour list for the RDF, same atoms (Zn and N), same bins
    edges = np.arange(0.0, 10.0 + 0.025, 0.05)
    selection = np.flatnonzero(np.isin(frames[0].numbers, [7, 30]))
    ours, theirs = [], []
    for frame in frames[: args.baseline_frames]:
        begin = time.perf_counter()
        pairs = rdf.neighbour_pairs(frame, 10.0, selection)
        counts = rdf.pair_histogram(pairs, frame.numbers, 30, 7, edges)
        g = rdf.rdf_from_counts(counts, 128, 512, False, frame.get_volume(), edges)
        ours.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        reference = ase_rdf(frame, selection, edges)
        theirs.append(time.perf_counter() - begin)
        assert np.allclose(g, reference), 'vesin and ASE disagree on the Zn-N RDF'
    print(
        f'Zn-N RDF per frame: vesin {np.mean(ours) * 1e3:.1f} ms, ASE neighbor_list {np.mean(theirs) * 1e3:.1f} ms '
        f'(same g): ASE / vesin = {np.mean(theirs) / np.mean(ours):.1f}'
    )

    # baseline 2: matscipy's compiled shortest-path ring search on the Zn atoms of the same supercell
    from matscipy.rings import ring_statistics

    zinc = frames[0][frames[0].numbers == 30]
    begin = time.perf_counter()
    counts = ring_statistics(zinc, 6.7, 17)
    compiled = time.perf_counter() - begin
    begin = time.perf_counter()
    single = analyse_glass(frames[0], pairs='Zn-N')
    searched = single['timings_s']['rings']
    print(
        f'ring search of one net: ours {searched:.2f} s (includes finding the linkers), matscipy {compiled:.2f} s: '
        f'ours / matscipy = {searched / compiled:.1f}; same counts: '
        f'{ {str(k): float(v) for k, v in enumerate(counts) if v} == single["rings"] }'
    )
    print(f'benchmark total {time.perf_counter() - start:.1f} s; target for the analysis: 30 s -> {total:.1f} s')


if __name__ == '__main__':
    main()
