"""Neighbour pairs, partial radial distribution functions, potentials of mean force and RDF distances.

Neighbour lists come from `vesin <https://github.com/Luthaf/vesin>`_ (a compiled cell list, any triclinic cell,
cutoffs longer than the cell): on the 2176-atom ZIF-4 glass it is about a hundred times faster than ASE's
``neighbor_list`` (``benchmarks/glass.py`` measures it), which matters for hundreds of trajectory frames.

**Normalisation** (Å, one frame of volume V with N_a atoms of element a):

- a ≠ b: g_ab(r) = V / (N_a N_b) · n_ab(r) / ΔV(r), with n_ab the number of (a, b) pairs in the shell;
- a = b: g_aa(r) = V / (N_a (N_a − 1)) · 2 n_aa(r) / ΔV(r) (ordered pairs of distinct atoms),

where ΔV(r) = 4π/3 (r_hi³ − r_lo³) is the exact shell volume. Both give g = 1 on average for an ideal gas of any
size. All periodic images are neighbours, including an atom's own images, which appear only beyond the shortest
lattice vector.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

__all__ = [
    'NeighbourPairs',
    'first_peak',
    'neighbour_pairs',
    'pair_histogram',
    'potential_of_mean_force',
    'rdf_from_counts',
    'r_chi',
    'shell_volumes',
]


@dataclass(frozen=True)
class NeighbourPairs:
    """Half neighbour list: each pair once, ``i < j`` not guaranteed; indices refer to the whole structure.

    ``vector[k]`` goes from atom ``i[k]`` to the copy of atom ``j[k]`` at image ``shift[k]``.
    """

    i: np.ndarray
    j: np.ndarray
    distance: np.ndarray
    shift: np.ndarray
    vector: np.ndarray


def neighbour_pairs(atoms: Atoms, cutoff: float, indices: np.ndarray | None = None) -> NeighbourPairs:
    """All pairs of atoms (restricted to ``indices`` when given) closer than ``cutoff`` Å, with vesin.

    The structure must be periodic in all three directions (glasses and MOF cells are).
    """
    NeighborList = _vesin_neighbour_list()
    if not atoms.pbc.all() or atoms.cell.rank < 3:
        raise ValueError('the glass analysis needs a cell periodic in all three directions (pbc=True and a 3D cell)')
    select = np.arange(len(atoms)) if indices is None else np.asarray(indices, dtype=np.int64)
    empty = NeighbourPairs(*(np.zeros(0, np.int64),) * 2, np.zeros(0), np.zeros((0, 3), np.int64), np.zeros((0, 3)))
    if len(select) == 0:
        return empty
    calculator = NeighborList(cutoff=float(cutoff), full_list=False)
    i, j, distance, shift, vector = calculator.compute(
        np.ascontiguousarray(atoms.positions[select], dtype=np.float64),
        np.ascontiguousarray(atoms.cell.array, dtype=np.float64),
        True,
        quantities='ijdSD',
    )
    return NeighbourPairs(
        select[i.astype(np.int64)], select[j.astype(np.int64)], distance, shift.astype(np.int64), vector
    )


def _vesin_neighbour_list():
    """Return vesin's ``NeighborList``, imported without torch when torch is not loaded yet.

    vesin probes torch (and cupy) at import to accept GPU tensors; this module passes numpy arrays only, and importing
    torch costs 5-10 s, which a command analysing one CIF should not pay. The probe then finds no torch; a later
    ``import torch`` works as usual.
    """
    if 'vesin' not in sys.modules and 'torch' not in sys.modules:
        sys.modules['torch'] = None  # makes ``import torch`` inside vesin raise ImportError
        try:
            import vesin  # noqa: F401
        finally:
            del sys.modules['torch']
    from vesin import NeighborList

    return NeighborList


def shell_volumes(edges: np.ndarray) -> np.ndarray:
    """Volumes (Å³) of the spherical shells between consecutive bin edges."""
    return 4.0 * np.pi / 3.0 * (edges[1:] ** 3 - edges[:-1] ** 3)


def pair_histogram(pairs: NeighbourPairs, numbers: np.ndarray, a: int, b: int, edges: np.ndarray) -> np.ndarray:
    """Histogram of (a, b) distances; for a = b every pair counts twice (ordered pairs), as the normalisation needs."""
    zi, zj = numbers[pairs.i], numbers[pairs.j]
    if a == b:
        mask = (zi == a) & (zj == a)
        weight = 2.0
    else:
        mask = ((zi == a) & (zj == b)) | ((zi == b) & (zj == a))
        weight = 1.0
    counts, _ = np.histogram(pairs.distance[mask], bins=edges)
    return weight * counts


def rdf_from_counts(counts: np.ndarray, n_a: int, n_b: int, same: bool, volume: float, edges: np.ndarray) -> np.ndarray:
    """g(r) from (ordered-pair) counts, with the normalisation of the module docstring."""
    pairs = n_a * (n_a - 1) if same else n_a * n_b
    if pairs == 0:
        return np.zeros(len(edges) - 1)
    return volume * counts / (pairs * shell_volumes(edges))


def potential_of_mean_force(g: np.ndarray, temperature: float) -> np.ndarray:
    """F(r) = −k_B T (ln g(r) − ln g_max) in eV (Castel & Coudert); ``nan`` where g = 0 (F is infinite there)."""
    g = np.asarray(g, dtype=float)
    g_max = g.max(initial=0.0)
    if g_max <= 0:
        return np.full_like(g, np.nan)
    with np.errstate(divide='ignore'):
        free = -units.kB * temperature * (np.log(g) - np.log(g_max))
    free[~np.isfinite(free)] = np.nan
    return free


def first_peak(r: np.ndarray, g: np.ndarray) -> dict:
    """Locate the first peak of g(r): the first local maximum at least half as high as the highest one.

    Also returns the first minimum after it (the end of the first shell): the lowest g between the peak and the next
    rise above half the peak height; where g is flat at its lowest (zero between the shells of a crystal), the middle
    of that flat stretch. ``None`` values when g is zero everywhere.
    """
    g = np.asarray(g, dtype=float)
    if not len(g) or g.max(initial=0.0) <= 0:
        return {'position': None, 'height': None, 'minimum': None, 'minimum_height': None}
    padded = np.concatenate([[-np.inf], g, [-np.inf]])
    maxima = np.flatnonzero((padded[1:-1] > padded[:-2]) & (padded[1:-1] >= padded[2:]))
    peak = int(maxima[g[maxima] >= 0.5 * g.max()][0])
    half = 0.5 * g[peak]
    below = np.flatnonzero(g[peak:] < half)
    end = len(g)
    if len(below):
        again = np.flatnonzero(g[peak + below[0] :] >= half)
        end = peak + below[0] + int(again[0]) if len(again) else len(g)
    segment = g[peak:end]
    lowest = segment.min()
    at_lowest = np.flatnonzero(segment <= lowest + 1e-9 * g[peak])
    run = at_lowest[: int(np.argmax(np.diff(np.concatenate([at_lowest, [at_lowest[-1] + 2]])) > 1)) + 1]
    low = peak + int(run[len(run) // 2])
    return {
        'position': float(r[peak]),
        'height': float(g[peak]),
        'minimum': float(r[low]),
        'minimum_height': float(g[low]),
    }


def r_chi(g: np.ndarray, reference: np.ndarray, bin_width: float, smearing: float = 0.1) -> float | None:
    """Wright's R_χ = [Σ (g − g_ref)² / Σ g_ref²]^½ of two RDFs on the same grid (0 = identical).

    Both are first smoothed with a Gaussian of ``smearing`` Å, so that the sharp peaks of a static crystal and the
    thermal peaks of a trajectory compare on their shape rather than on bin noise (A. C. Wright, J. Non-Cryst.
    Solids 159, 264 (1993), used there for total correlation functions).
    """
    g, reference = (
        _smooth(np.asarray(g, float), bin_width, smearing),
        _smooth(np.asarray(reference, float), bin_width, smearing),
    )
    norm = float(np.sum(reference**2))
    if norm == 0:
        return None
    return float(np.sqrt(np.sum((g - reference) ** 2) / norm))


def _smooth(values: np.ndarray, bin_width: float, smearing: float) -> np.ndarray:
    if smearing <= 0:
        return values
    half = int(np.ceil(4 * smearing / bin_width))
    x = np.arange(-half, half + 1) * bin_width
    kernel = np.exp(-0.5 * (x / smearing) ** 2)
    return np.convolve(values, kernel / kernel.sum(), mode='same')
