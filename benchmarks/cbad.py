"""Benchmark: vectorised CBAD selection against a plain-Python loop written from the paper's SI pseudocode.

20,000 ZIF-8 frames (276 atoms) by random perturbation of the reference, in ten amplitude levels (Gaussian
displacements σ = 0.02 √k Å and cell strains 0.002 √k, k = 1…10, like the paper's ten AIMD temperatures; optionally
the frames of a real MD trajectory are put first with ``--md``). The plain loop (``tests/selection/plain_cbad.py``)
shares only the reference topology; it computes every value, bin and set lookup frame by frame in Python, and
accepts with the text's rule (at least one new bin). Both select at the default resolutions.

The plain loop costs ~10 ms per frame here, so by default it runs on a prefix (``--plain-frames``) and its time is
extrapolated linearly to all frames (its cost per frame does not depend on the frame: every frame computes the
same values and does the same set lookups); the selections are compared on that prefix. ``--plain-frames 0`` runs
it on everything. Wall and CPU times are printed, with the load, and the ratios come from this one run.

Run: .venv/bin/python benchmarks/cbad.py [--frames 20000] [--plain-frames 3000] [--md zif8_reaxff.extxyz]
"""

import argparse
import os
import resource
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CIF = ROOT / 'tests' / 'data_files' / 'structures' / 'ZIF-8_Coudert2017.cif'


def perturbed_frames(reference, count: int, levels: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions and cells of ``count`` frames in ``levels`` blocks of growing displacement and strain."""
    rng = np.random.default_rng(seed)
    fractional = reference.get_scaled_positions(wrap=False)
    positions = np.empty((count, len(reference), 3))
    cells = np.empty((count, 3, 3))
    for frame, level in enumerate(np.repeat(np.arange(1, levels + 1), -(-count // levels))[:count]):
        cells[frame] = reference.cell.array @ (np.eye(3) + rng.normal(0.0, 0.002 * np.sqrt(level), (3, 3)))
        positions[frame] = fractional @ cells[frame] + rng.normal(0.0, 0.02 * np.sqrt(level), (len(reference), 3))
    return positions, cells


def timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=20000)
    parser.add_argument('--plain-frames', type=int, default=3000, help='prefix run through the plain loop (0: all)')
    parser.add_argument('--md', type=Path, help='extxyz trajectory of ZIF-8 (reference atom order) to put first')
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import ase.io

    from aiida_mofal.selection.cbad import CbadOccupancy, CbadTopology, check_resolutions
    from tests.selection.plain_cbad import plain_select

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        reference = ase.io.read(CIF)
    positions, cells = perturbed_frames(reference, args.frames)
    source = f'{args.frames} perturbed frames'
    if args.md:
        md = ase.io.read(args.md, index=':')
        n_md = min(len(md), args.frames)
        positions[:n_md] = np.stack([atoms.positions for atoms in md[:n_md]])
        cells[:n_md] = np.stack([atoms.cell.array for atoms in md[:n_md]])
        source = f'{n_md} MD frames of {args.md.name} then {args.frames - n_md} perturbed frames'
    n_frames = len(positions)
    n_plain = n_frames if args.plain_frames <= 0 else min(args.plain_frames, n_frames)
    resolutions = check_resolutions()
    print(f'load: {" ".join(f"{x:.1f}" for x in os.getloadavg())} (1, 5, 15 min) on {os.cpu_count()} cores')
    print(f'input: {source}, {len(reference)} atoms each; resolutions {resolutions}')

    topology, wall, _ = timed(CbadTopology.from_reference, reference)
    print(
        f'topology (once per reference, shared by both): {wall:.2f} s; {topology.n_descriptors} values per frame; '
        f'{len(topology.atom_type_names)} atom types; descriptor types {topology.family_counts()}'
    )

    selected, wall_vec, cpu_vec = timed(CbadOccupancy(resolutions).select, topology, positions, cells)
    tracemalloc.start()
    CbadOccupancy(resolutions).select(topology, positions, cells)
    peak_vec = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f'vectorised, {n_frames} frames: {len(selected)} selected, {wall_vec:.2f} s wall, {cpu_vec:.2f} s CPU '
        f'({1e3 * wall_vec / n_frames:.3f} ms/frame), peak traced memory {peak_vec / 2**20:.1f} MiB '
        f'(the input arrays, {positions.nbytes / 2**20:.0f} MiB, are not counted)'
    )
    prefix_vec, wall_vec_prefix, cpu_vec_prefix = timed(
        CbadOccupancy(resolutions).select, topology, positions[:n_plain], cells[:n_plain]
    )

    tracemalloc.start()
    plain_select(topology, positions[:50], cells[:50], resolutions)
    peak_plain = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    (prefix_plain, _), wall_plain, cpu_plain = timed(
        plain_select, topology, positions[:n_plain], cells[:n_plain], resolutions
    )
    print(
        f'plain loop, {n_plain} frames: {len(prefix_plain)} selected, {wall_plain:.2f} s wall, {cpu_plain:.2f} s CPU '
        f'({1e3 * wall_plain / n_plain:.3f} ms/frame), peak traced memory {peak_plain / 2**20:.1f} MiB (50 frames)'
    )
    equal = list(prefix_vec) == list(prefix_plain) and list(selected[selected < n_plain]) == list(prefix_plain)
    print(f'same selection on the {n_plain} frames run through both: {equal}')
    print(
        f'ratio on those {n_plain} frames: wall {wall_plain / wall_vec_prefix:.0f}x, '
        f'CPU {cpu_plain / cpu_vec_prefix:.0f}x'
    )
    if n_plain < n_frames:
        scale = n_frames / n_plain
        print(
            f'plain loop extrapolated to {n_frames} frames: {wall_plain * scale:.0f} s wall, {cpu_plain * scale:.0f} s '
            f'CPU; ratio against the vectorised run on all frames: wall {wall_plain * scale / wall_vec:.0f}x, '
            f'CPU {cpu_plain * scale / cpu_vec:.0f}x'
        )
    print(f'max resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB')
    if not equal:
        raise SystemExit('the selections differ')


if __name__ == '__main__':
    main()
