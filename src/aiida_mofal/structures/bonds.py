"""Periodic bond graphs of framework structures from covalent radii.

Two atoms are bonded when their distance is at most ``(1 + tolerance) * (r_i + r_j)`` with ASE's
(Cordero) covalent radii. Metal–metal and metal–hydrogen contacts are never bonds: in MOF bricks the
metals sit 3.2–3.6 Å apart and the μ3-OH hydrogen 2.8 Å from Zr, both inside the tolerance window,
but neither is a bond that building blocks or formal charges should see.

Every bond is kept with its periodic image shift, so that blocks and clusters can be unwrapped across
cell boundaries exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.neighborlist import neighbor_list

__all__ = ['NONMETALS', 'BondGraph', 'bond_graph', 'is_metal', 'graph_from_pairs']

#: Elements treated as non-metals (metalloids B, Si, As, Se, Te included): everything else is a metal.
NONMETALS = frozenset(
    ['H', 'He', 'B', 'C', 'N', 'O', 'F', 'Ne', 'Si', 'P', 'S', 'Cl', 'Ar', 'As', 'Se', 'Br', 'Kr', 'Te', 'I', 'Xe']
)

#: Default relative tolerance on the sum of covalent radii (ZIF glasses stretch Zn–N to 2.2 Å, 1.14 × sum).
DEFAULT_TOLERANCE = 0.2


def is_metal(symbols) -> np.ndarray:
    """Return a boolean mask, True where the element is a metal (anything not in ``NONMETALS``)."""
    return np.array([s not in NONMETALS for s in symbols], dtype=bool)


@dataclass(frozen=True)
class BondGraph:
    """Directed bond list of a (periodic) structure: every bond appears twice, once from each end.

    ``i[k] -> j[k]`` with integer image ``shift[k]``: the bonded copy of atom ``j[k]`` sits at
    ``positions[j] + shift @ cell``. Edges are sorted by ``i`` so that ``indptr`` gives CSR access.
    """

    n_atoms: int
    i: np.ndarray
    j: np.ndarray
    shift: np.ndarray
    distance: np.ndarray
    indptr: np.ndarray = field(repr=False)

    @property
    def n_bonds(self) -> int:
        """Number of undirected bonds."""
        return len(self.i) // 2

    @property
    def degree(self) -> np.ndarray:
        """Number of bonds of every atom."""
        return np.diff(self.indptr)

    def neighbors(self, atom: int) -> slice:
        """Slice of the edge arrays holding the bonds of ``atom``."""
        return slice(self.indptr[atom], self.indptr[atom + 1])

    def unique(self) -> np.ndarray:
        """Mask selecting one direction of every bond (i < j, or i == j with a positive shift)."""
        s = self.shift
        positive = (s[:, 0] > 0) | ((s[:, 0] == 0) & ((s[:, 1] > 0) | ((s[:, 1] == 0) & (s[:, 2] > 0))))
        return (self.i < self.j) | ((self.i == self.j) & positive)

    def reverse_index(self) -> np.ndarray:
        """For every directed edge, the index of the same bond seen from the other end."""
        n = self.n_atoms
        key = _edge_key(self.i, self.j, self.shift, n)
        rkey = _edge_key(self.j, self.i, -self.shift, n)
        order = np.argsort(key, kind='stable')
        pos = np.searchsorted(key[order], rkey)
        return order[pos]


def _edge_key(i, j, shift, n) -> np.ndarray:
    s = (np.asarray(shift, dtype=np.int64) + 64) & 127
    return ((np.asarray(i, np.int64) * n + np.asarray(j, np.int64)) << 21) | (s[:, 0] << 14) | (s[:, 1] << 7) | s[:, 2]


def _finalise(n_atoms: int, i, j, shift, distance) -> BondGraph:
    order = np.lexsort((j, i))
    i, j, shift, distance = i[order], j[order], shift[order], distance[order]
    indptr = np.zeros(n_atoms + 1, dtype=np.int64)
    np.add.at(indptr, i + 1, 1)
    indptr = np.cumsum(indptr)
    return BondGraph(n_atoms, i.astype(np.int64), j.astype(np.int64), shift.astype(np.int64), distance, indptr)


def bond_graph(atoms: Atoms, tolerance: float = DEFAULT_TOLERANCE, radii: dict[str, float] | None = None) -> BondGraph:
    """Build the bond graph of ``atoms`` (periodic or not) with one vectorised neighbour search.

    ``radii`` overrides covalent radii per element (Å). Metal–metal and metal–H pairs are dropped, so
    metal–ligand bonds are exactly the metal–(non-H non-metal) bonds.
    """
    numbers = atoms.get_atomic_numbers()
    symbols = atoms.get_chemical_symbols()
    r = covalent_radii[numbers].copy()
    if radii:
        for k, sym in enumerate(symbols):
            if sym in radii:
                r[k] = radii[sym]
    if len(atoms) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _finalise(0, empty, empty, np.zeros((0, 3), np.int64), np.zeros(0))
    metal = is_metal(symbols)
    hydrogen = numbers == 1
    # one scalar cutoff: the longest bond allowed between elements present (metal–metal and metal–H
    # excluded) -- much cheaper for ASE than per-atom radii that would let Zr–Zr pairs reach 4.2 Å
    r_nonmetal = r[~metal].max(initial=0.0)
    r_ligand = r[~metal & ~hydrogen].max(initial=0.0)
    r_metal = r[metal].max(initial=0.0)
    reach = max(2 * r_nonmetal, r_metal + r_ligand if r_ligand > 0 and r_metal > 0 else 0.0)
    cutoff = (1.0 + tolerance) * reach
    work = atoms
    if not atoms.pbc.any() and atoms.cell.rank < 3:
        work = atoms.copy()
        work.cell = np.eye(3)  # non-periodic: any cell works for ASE's binning
    i, j, d, shift = neighbor_list('ijdS', work, cutoff, self_interaction=False)
    keep = d <= (1.0 + tolerance) * (r[i] + r[j])
    keep &= ~(metal[i] & metal[j]) & ~(metal[i] & hydrogen[j]) & ~(hydrogen[i] & metal[j])
    return _finalise(len(atoms), i[keep], j[keep], shift[keep], d[keep])


def graph_from_pairs(atoms: Atoms, pairs: np.ndarray) -> BondGraph:
    """Bond graph of a non-periodic structure from an explicit list of bonded pairs ``(n, 2)``."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    i = np.concatenate([pairs[:, 0], pairs[:, 1]])
    j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    pos = atoms.positions
    d = np.linalg.norm(pos[j] - pos[i], axis=1) if len(i) else np.zeros(0)
    return _finalise(len(atoms), i, j, np.zeros((len(i), 3), np.int64), d)
