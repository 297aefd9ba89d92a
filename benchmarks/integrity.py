"""Benchmark: the integrity record (bonds broken/formed per frame) for ZIF-4 supercells.

Run: .venv/bin/python benchmarks/integrity.py [--frames 100] [--sizes 1 2 4]
Prints, per supercell, seconds per frame of `bond_changes` and of the obvious baseline in the same run
(rebuild the bond graph of every frame with ASE's neighbour list and compare bond sets), and their ratio.
Frames carry 0.05 Å Gaussian noise: the record must stay intact; 'baseline alarms' counts the bonds the
baseline, which has no hysteresis, wrongly calls broken or formed in its worst frame.
Goal: 20k atoms x a few frames in seconds; 2,000 atoms x hundreds of frames in well under a minute.
"""

import argparse
import time
import warnings
from pathlib import Path

import ase.io
import numpy as np

from aiida_mofal.analysis.integrity import bond_changes
from aiida_mofal.structures.bonds import bond_graph, is_metal

CIF = Path(__file__).resolve().parent.parent / 'tests' / 'data_files' / 'structures' / 'ZIF-4_Lewis2009.cif'


def baseline(reference, positions, cells):
    """Per frame: a full bond graph, then the set difference of its non-metal bonds with the reference."""

    def nonmetal_pairs(atoms):
        graph = bond_graph(atoms)
        nonmetal = ~is_metal(atoms.get_chemical_symbols())
        keep = graph.unique() & nonmetal[graph.i] & nonmetal[graph.j]
        return set(zip(np.minimum(graph.i, graph.j)[keep].tolist(), np.maximum(graph.i, graph.j)[keep].tolist()))

    start = nonmetal_pairs(reference)
    frame_atoms = reference.copy()
    changes = []
    for pos, cell in zip(positions, cells):
        frame_atoms.cell = cell
        frame_atoms.positions = pos
        now = nonmetal_pairs(frame_atoms)
        changes.append((len(start - now), len(now - start)))
    return changes


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--frames', type=int, default=100, help='frames for the small cells (20 for 4x4x4)')
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 2, 4], help='supercell repetitions n (n x n x n)')
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # ASE's CIF reader warns about the P1 setting
        unit = ase.io.read(CIF)
    header = ['atoms', 'frames', 'record s', 's/frame', 'baseline s/frame', 'speed-up', 'baseline alarms']
    widths = [7, 6, 9, 8, 17, 8, 15]
    print(' '.join(f'{name:>{width}}' for name, width in zip(header, widths)))
    for n in args.sizes:
        atoms = unit.repeat((n, n, n))
        frames = args.frames if len(atoms) < 10_000 else max(3, args.frames // 5)
        positions = atoms.positions[None] + rng.normal(0.0, 0.05, (frames, len(atoms), 3))
        cells = np.repeat(atoms.cell.array[None], frames, axis=0)
        t = time.perf_counter()
        record = bond_changes(atoms, positions, cells)
        ours = time.perf_counter() - t
        base_frames = min(frames, 10)
        t = time.perf_counter()
        base = baseline(atoms, positions[:base_frames], cells[:base_frames])
        theirs = (time.perf_counter() - t) / base_frames
        assert record['summary']['intact']
        alarms = max(b + f for b, f in base)
        print(
            f'{len(atoms):>7} {frames:>6} {ours:>9.2f} {ours / frames:>8.4f} {theirs:>17.4f} '
            f'{theirs / (ours / frames):>7.1f}x {alarms:>14}'
        )


if __name__ == '__main__':
    main()
