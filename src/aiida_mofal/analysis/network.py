"""The metal–linker net of a ZIF frame: metals and imidazolates as nodes, metal–N contacts as edges.

Linkers are the connected components of the organic (non-metal) bond graph, with the bond criterion of
:mod:`aiida_mofal.structures.bonds` (distance ≤ (1 + tolerance) × sum of covalent radii): a component holding at least
one ligand atom (N) is a linker. A metal and a linker are joined when a metal–N distance is at most the coordination
cutoff (2.5 Å for Zn–N, Castel & Coudert). Two metals are linked when they share an imidazolate, so the rings of this
bipartite net are the paper's "zinc–imidazolate alternate rings"; their size is reported as the number of metals
(half the alternate ring's length).

The organic bonds are found with vesin (the same criterion as :func:`~aiida_mofal.structures.bonds.bond_graph`, which
a test checks) because ASE's neighbour search costs about a second per frame for 2176 atoms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from aiida_mofal.structures.bonds import DEFAULT_TOLERANCE, is_metal

from .rdf import NeighbourPairs, neighbour_pairs
from .rings import PeriodicGraph

__all__ = ['MetalLinkerNet', 'linkers', 'metal_linker_net', 'organic_bonds']


def organic_bonds(atoms: Atoms, tolerance: float = DEFAULT_TOLERANCE) -> NeighbourPairs:
    """Bonds between non-metal atoms (the organic part of a MOF), each once, with their image shifts."""
    symbols = atoms.get_chemical_symbols()
    nonmetal = np.flatnonzero(~is_metal(symbols))
    radii = covalent_radii[atoms.numbers]
    reach = (1.0 + tolerance) * 2.0 * radii[nonmetal].max(initial=0.0)
    pairs = neighbour_pairs(atoms, reach, nonmetal)
    keep = pairs.distance <= (1.0 + tolerance) * (radii[pairs.i] + radii[pairs.j])
    return NeighbourPairs(pairs.i[keep], pairs.j[keep], pairs.distance[keep], pairs.shift[keep], pairs.vector[keep])


@dataclass(frozen=True)
class Linkers:
    """Linker index of every atom (−1: not in a linker) and the image shift that unwraps it into one piece."""

    index: np.ndarray
    unwrap: np.ndarray
    count: int


def linkers(atoms: Atoms, bonds: NeighbourPairs, ligand: str = 'N') -> Linkers:
    """Find the linkers: components of the organic bonds holding a ligand atom, unwrapped across the cell."""
    n = len(atoms)
    graph = coo_matrix((np.ones(len(bonds.i)), (bonds.i, bonds.j)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    ligand_atoms = atoms.numbers == atomic_numbers[ligand]
    # number linkers by their first ligand atom, so that an H atom leaving (a C–H bond stretched past the criterion
    # in a hot frame) does not renumber them and the net of the frame stays recognisably the same
    ligand_index = np.flatnonzero(ligand_atoms)
    kept, first_ligand = np.unique(component[ligand_index], return_index=True)
    kept = kept[np.argsort(first_ligand)]
    relabel = np.full(component.max() + 1 if n else 0, -1, dtype=np.int64)
    relabel[kept] = np.arange(len(kept))
    index = relabel[component] if n else np.zeros(0, np.int64)
    # unwrap: breadth-first over the bonds, level by level, from the first atom of every component
    unwrap = np.zeros((n, 3), dtype=np.int64)
    reached = np.zeros(n, dtype=bool)
    _, first = np.unique(component, return_index=True)
    reached[first] = True
    i = np.concatenate([bonds.i, bonds.j])
    j = np.concatenate([bonds.j, bonds.i])
    shift = np.concatenate([bonds.shift, -bonds.shift])
    while True:
        step = reached[i] & ~reached[j]
        if not step.any():
            break
        # one parent per newly reached atom
        targets, pick = np.unique(j[step], return_index=True)
        unwrap[targets] = unwrap[i[step][pick]] + shift[step][pick]
        reached[targets] = True
    return Linkers(index, unwrap, len(kept))


@dataclass(frozen=True)
class MetalLinkerNet:
    """The bipartite periodic net (metals first, then linkers) and what it was built from."""

    graph: PeriodicGraph
    metals: np.ndarray
    n_linkers: int

    @property
    def n_metals(self) -> int:
        """Number of metal nodes."""
        return len(self.metals)


def metal_linker_net(atoms: Atoms, contacts: NeighbourPairs, found: Linkers, metal: str = 'Zn') -> MetalLinkerNet:
    """Join every metal to the linkers whose ligand atoms it touches (``contacts``: metal–ligand pairs ≤ cutoff)."""
    numbers, metal_number = atoms.numbers, atomic_numbers[metal]
    metals = np.flatnonzero(numbers == metal_number)
    node = np.full(len(atoms), -1, dtype=np.int64)
    node[metals] = np.arange(len(metals))
    # orient every contact metal -> ligand
    forward = numbers[contacts.i] == metal_number
    m = np.where(forward, contacts.i, contacts.j)
    x = np.where(forward, contacts.j, contacts.i)
    s = np.where(forward[:, None], contacts.shift, -contacts.shift)
    keep = (node[m] >= 0) & (found.index[x] >= 0)
    m, x, s = m[keep], x[keep], s[keep]
    # the ligand copy at image s belongs to the copy of its linker at image s - unwrap
    edges = np.column_stack([node[m], len(metals) + found.index[x], s - found.unwrap[x]])
    edges = np.unique(edges, axis=0) if len(edges) else np.zeros((0, 5), np.int64)
    labels = (metal,) * len(metals) + ('linker',) * found.count
    graph = PeriodicGraph(len(metals) + found.count, edges[:, 0], edges[:, 1], edges[:, 2:], labels=labels)
    return MetalLinkerNet(graph, metals, found.count)
