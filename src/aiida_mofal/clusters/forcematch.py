"""Force matching: does a cluster reproduce the bulk forces on its core atoms? (cluster paper §2.1.1, SI.6).

If a cluster encloses the bulk environment of atom i, the force on i is the same in the cluster and in
the bulk. Clusters are only translated out of the bulk (never rotated), so forces compare directly.
Use it with any ASE calculator — a trained MACE model, or CP2K/xTB for small systems — to choose the
cheapest mantle depth whose core-atom force error is acceptable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

__all__ = [
    'cheapest_depth',
    'choose_depth',
    'compare_mantle_depths',
    'core_force_errors',
    'core_force_rmse',
    'force_match',
    'sample_seeds',
]


def _forces(atoms: Atoms, calculator: Calculator) -> np.ndarray:
    work = atoms.copy()
    work.calc = calculator
    return np.asarray(work.get_forces())


def core_force_errors(bulk_forces: np.ndarray, cluster: Atoms, cluster_forces: np.ndarray) -> np.ndarray:
    """Per-atom force RMSE (over x, y, z; eV/Å) of the core atoms of ``cluster`` against the bulk."""
    core = np.flatnonzero(cluster.arrays['role'] == 'core')
    parents = cluster.arrays['parent_index'][core]
    diff = np.asarray(cluster_forces)[core] - np.asarray(bulk_forces)[parents]
    return np.sqrt(np.mean(diff**2, axis=1))


def core_force_rmse(bulk_forces: np.ndarray, cluster: Atoms, cluster_forces: np.ndarray) -> float:
    """Force RMSE over all core atoms and components of one cluster (eV/Å)."""
    per_atom = core_force_errors(bulk_forces, cluster, cluster_forces)
    return float(np.sqrt(np.mean(per_atom**2))) if len(per_atom) else float('nan')


def force_match(
    bulk: Atoms,
    clusters: Sequence[Atoms],
    calculator: Calculator,
    bulk_forces: np.ndarray | None = None,
) -> list[float]:
    """Core-atom force RMSE (eV/Å) of every cluster against its parent ``bulk``, with one calculator."""
    if bulk_forces is None:
        bulk_forces = _forces(bulk, calculator)
    return [core_force_rmse(bulk_forces, c, _forces(c, calculator)) for c in clusters]


def compare_mantle_depths(
    bulk: Atoms,
    flagged: Sequence[int],
    calculator: Calculator,
    depths: Sequence[int] = (0, 1, 2),
    **extract_kwargs,
) -> dict[int, list[float]]:
    """Force-match clusters around the same flagged atoms for several mantle depths.

    Returns ``{depth: [rmse per cluster]}``; the smallest depth with acceptable errors is the design choice.
    """
    from .extract import extract_clusters

    bulk_forces = _forces(bulk, calculator)
    out = {}
    for depth in depths:
        clusters = extract_clusters(bulk, flagged, mantle_depth=depth, **extract_kwargs)
        out[int(depth)] = force_match(bulk, clusters, calculator, bulk_forces=bulk_forces)
    return out


def cheapest_depth(errors: dict[int, list[float]], threshold: float) -> int | None:
    """Return the smallest mantle depth whose worst core-atom force RMSE is below ``threshold`` (the design rule).

    ``errors`` is what :func:`compare_mantle_depths` returns (eV/Å); None when no depth qualifies.
    """
    for depth in sorted(errors):
        values = [value for value in errors[depth] if np.isfinite(value)]
        if values and max(values) < threshold:
            return depth
    return None


def choose_depth(errors: dict[int, list[float]], threshold: float) -> int:
    """Return the campaign's mantle depth: the cheapest under ``threshold``, else the largest candidate.

    A campaign must cut clusters either way; when no depth passes, the widest mantle is the one whose core
    labels are closest to the bulk's (``mantle_depth: auto``, docs/guide/campaign.md).
    """
    best = cheapest_depth(errors, threshold)
    return max(errors) if best is None else best


def sample_seeds(atoms: Atoms, samples: int) -> list[int]:
    """Return one seed atom per kind of building block (by formula, in block order), at most ``samples``.

    One core block per kind (a metal node, a linker, ...) covers every chemistry the campaign cuts through,
    for a few force evaluations instead of one per unknown atom.
    """
    from aiida_mofal.structures.blocks import find_blocks

    blocks = find_blocks(atoms)
    seeds, kinds = [], set()
    for block in range(blocks.n_blocks):
        kind = blocks.formula(atoms, block)
        if kind not in kinds:
            kinds.add(kind)
            seeds.append(int(blocks.members(block)[0]))
        if len(seeds) >= samples:
            break
    return seeds
