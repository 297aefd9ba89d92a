"""Building blocks of a framework: the pieces a cluster is assembled from.

A bond is *cuttable* when it joins two non-metal, non-hydrogen atoms that each have at least two
non-metal neighbours (so C–H, O–H and carboxylate C–O bonds never qualify), is a single bond by length
(longer than ``single_bond_fraction`` × the sum of covalent radii), and does not lie on a ring of at most
``max_ring`` atoms (metal atoms count as ring members, so chelate rings stay whole). A cut that would only
split off a metal-free dead end (a methyl group) is undone, since the piece would not be a building block.

Metal–ligand bonds are never cut — unless the pieces left after the organic cuts are still infinite
(periodic), as in ZIFs where the imidazolate has no cuttable bond: then, inside such a piece only, the
metal–ligand bonds are cut and every metal atom becomes a block of its own. This gives Zr-bricks
(Zr6O4(OH)4 + 12 carboxylate groups) and phenylene rings in UiO-66, Zn4O(CO2)6 and phenylenes in MOF-5,
and Zn centres and imidazolates in ZIFs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from .bonds import BondGraph, bond_graph, is_metal

__all__ = ['Blocks', 'find_blocks', 'map_blocks']

#: Largest ring (in atoms, metals included) whose bonds are never cut.
DEFAULT_MAX_RING = 8
#: A non-metal bond is single when longer than this fraction of the sum of covalent radii
#: (C–C: 1.41 Å; carboxylate C–aryl C is 1.49 Å, aromatic C–C 1.39 Å).
DEFAULT_SINGLE_BOND_FRACTION = 0.93


@dataclass
class Blocks:
    """Partition of a structure into building blocks.

    ``labels[a]`` is the block of atom ``a``; ``offsets[a]`` the integer image that makes the block whole
    (``positions[a] + offsets[a] @ cell``). ``cut`` marks the directed edges of ``graph`` that join two
    blocks; ``coordination`` marks those of them that are metal–ligand bonds.
    """

    graph: BondGraph
    labels: np.ndarray
    offsets: np.ndarray
    cut: np.ndarray
    coordination: np.ndarray
    n_blocks: int
    has_metal: np.ndarray

    def __post_init__(self):
        order = np.argsort(self.labels, kind='stable')
        bounds = np.searchsorted(self.labels[order], np.arange(self.n_blocks + 1))
        self._order, self._bounds = order, bounds
        edges = np.flatnonzero(self.cut)
        g = self.graph
        self.edge_index = edges
        self.edge_from = self.labels[g.i[edges]]
        self.edge_to = self.labels[g.j[edges]]
        # image of the neighbouring block, in the frame where the source block has image 0
        self.edge_shift = self.offsets[g.i[edges]] + g.shift[edges] - self.offsets[g.j[edges]]
        eo = np.argsort(self.edge_from, kind='stable')
        self._edge_order = eo
        self._edge_bounds = np.searchsorted(self.edge_from[eo], np.arange(self.n_blocks + 1))

    def members(self, block: int) -> np.ndarray:
        """Atom indices of ``block`` (sorted)."""
        return self._order[self._bounds[block] : self._bounds[block + 1]]

    def sizes(self) -> np.ndarray:
        """Return the number of atoms of every block."""
        return np.diff(self._bounds)

    def block_edges(self, block: int) -> np.ndarray:
        """Return indices into the ``edge_*`` arrays of the cut bonds leaving ``block``."""
        return self._edge_order[self._edge_bounds[block] : self._edge_bounds[block + 1]]

    def neighbours(self, block: int) -> list[tuple[int, tuple[int, int, int]]]:
        """Adjacent blocks of ``block`` as (block, image) pairs, without repetition."""
        out = {}
        for k in self.block_edges(block):
            out[(int(self.edge_to[k]), tuple(int(x) for x in self.edge_shift[k]))] = None
        return list(out)

    def formula(self, atoms: Atoms, block: int) -> str:
        """Chemical formula of one block, for messages and docs."""
        return atoms[self.members(block)].get_chemical_formula()


def _ring_bond(graph: BondGraph, u: int, v: int, s: tuple, max_ring: int, nbrs: dict) -> bool:
    """Tell whether bond u→(v, s) lies on a ring of at most ``max_ring`` atoms (bidirectional BFS)."""
    max_len = max_ring - 1  # path length u..v without the bond itself

    def adj(a):
        if a not in nbrs:
            sl = graph.neighbors(a)
            nbrs[a] = list(zip(graph.j[sl].tolist(), map(tuple, graph.shift[sl].tolist())))
        return nbrs[a]

    def is_bond(a, ai, b, bi):
        # the excluded bond, from either side
        return (a == u and ai == (0, 0, 0) and b == v and bi == s) or (
            a == v and ai == s and b == u and bi == (0, 0, 0)
        )

    def bfs(start, img, depth):
        seen = {(start, img): 0}
        queue = deque([(start, img)])
        while queue:
            a, ai = queue.popleft()
            da = seen[(a, ai)]
            if da == depth:
                continue
            for b, bs in adj(a):
                bi = (ai[0] + bs[0], ai[1] + bs[1], ai[2] + bs[2])
                if (b, bi) in seen or is_bond(a, ai, b, bi):
                    continue
                seen[(b, bi)] = da + 1
                queue.append((b, bi))
        return seen

    h1 = max_len // 2
    from_u = bfs(u, (0, 0, 0), h1)
    from_v = bfs(v, s, max_len - h1)
    if len(from_u) > len(from_v):
        from_u, from_v = from_v, from_u
    return any(key in from_v and d + from_v[key] <= max_len for key, d in from_u.items())


def _components(n: int, graph: BondGraph, keep: np.ndarray) -> tuple[int, np.ndarray]:
    m = coo_matrix((np.ones(int(keep.sum())), (graph.i[keep], graph.j[keep])), shape=(n, n)).tocsr()
    return connected_components(m, directed=False)


def _offsets(n: int, graph: BondGraph, keep: np.ndarray, labels: np.ndarray, n_comp: int) -> np.ndarray:
    """Images that make every component whole, from a BFS spanning forest."""
    gi, gj, gs = graph.i[keep], graph.j[keep], graph.shift[keep]
    roots = np.unique(labels, return_index=True)[1]
    rows = np.concatenate([gi, np.full(len(roots), n)])
    cols = np.concatenate([gj, roots])
    m = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
    order, pred = breadth_first_order(m, n, directed=True, return_predecessors=True)
    # shift of one edge pred[v] -> v for every tree node v
    key = gi * (n + 1) + gj
    first = np.unique(key, return_index=True)
    tree = order[1:]
    tree_nonroot = tree[pred[tree] != n]
    pos = np.searchsorted(first[0], pred[tree_nonroot] * (n + 1) + tree_nonroot)
    edge_shift = np.zeros((n, 3), dtype=np.int64)
    edge_shift[tree_nonroot] = gs[first[1][pos]]
    off = [(0, 0, 0)] * n
    p = pred.tolist()
    es = edge_shift.tolist()
    for v in tree_nonroot.tolist():
        a, b = off[p[v]], es[v]
        off[v] = (a[0] + b[0], a[1] + b[1], a[2] + b[2])
    return np.array(off, dtype=np.int64).reshape(n, 3)


def find_blocks(
    atoms: Atoms,
    graph: BondGraph | None = None,
    max_ring: int = DEFAULT_MAX_RING,
    single_bond_fraction: float = DEFAULT_SINGLE_BOND_FRACTION,
) -> Blocks:
    """Partition ``atoms`` into building blocks joined by cuttable bonds (see the module docstring).

    Raises ``ValueError`` when a block stays infinite even after metal–ligand bonds are cut.
    """
    if graph is None:
        graph = bond_graph(atoms)
    n = len(atoms)
    symbols = atoms.get_chemical_symbols()
    numbers = atoms.get_atomic_numbers()
    metal = is_metal(symbols)
    gi, gj = graph.i, graph.j
    nonmetal_edge = ~metal[gi] & ~metal[gj]
    nm_degree = np.bincount(gi[nonmetal_edge], minlength=n)
    heavy = (numbers != 1) & ~metal & (nm_degree >= 2)
    rsum = covalent_radii[numbers[gi]] + covalent_radii[numbers[gj]]
    candidate = heavy[gi] & heavy[gj] & (graph.distance > single_bond_fraction * rsum)

    reverse = graph.reverse_index()
    cut = np.zeros(len(gi), dtype=bool)
    nbrs: dict = {}
    for k in np.flatnonzero(candidate & graph.unique()):
        if not _ring_bond(graph, int(gi[k]), int(gj[k]), tuple(graph.shift[k].tolist()), max_ring, nbrs):
            cut[k] = cut[reverse[k]] = True

    # undo cuts that only split off a metal-free dead end (methyl, ethyl, ...)
    while True:
        n_comp, labels = _components(n, graph, ~cut)
        comp_metal = np.bincount(labels, weights=metal, minlength=n_comp) > 0
        n_cuts = np.bincount(labels[gi[cut]], minlength=n_comp)
        dead = ~comp_metal & (n_cuts == 1)
        undo = cut & dead[labels[gi]]
        if not undo.any():
            break
        cut[undo] = False
        cut[reverse[undo]] = False

    coordination = np.zeros(len(gi), dtype=bool)
    for attempt in range(2):
        n_comp, labels = _components(n, graph, ~cut)
        offsets = _offsets(n, graph, ~cut, labels, n_comp)
        keep = ~cut
        bad = np.any(offsets[gi[keep]] + graph.shift[keep] - offsets[gj[keep]] != 0, axis=1)
        periodic = np.zeros(n_comp, dtype=bool)
        periodic[labels[gi[keep][bad]]] = True
        if not periodic.any():
            break
        if attempt == 1:
            comps = np.flatnonzero(periodic)[:3]
            names = [atoms[np.flatnonzero(labels == c)].get_chemical_formula() for c in comps]
            raise ValueError(f'building blocks stay infinite after cutting metal–ligand bonds: {names}')
        # ZIF-like nets: cut metal–ligand bonds inside the infinite pieces only
        extra = periodic[labels[gi]] & (metal[gi] ^ metal[gj])
        coordination |= extra
        cut |= extra

    has_metal = np.bincount(labels, weights=metal, minlength=n_comp) > 0
    return Blocks(graph, labels, offsets, cut, coordination, int(n_comp), has_metal)


def map_blocks(reference: Blocks, frame: Atoms) -> Blocks:
    """Carry the building blocks of a reference structure over to ``frame``, a configuration of the same atoms.

    Blocks recomputed from a frame's own bond lengths change with the motion: an MD walk compresses the
    carboxylate C–C(aryl) bond from 1.49 to 1.40 Å, below the single-bond length, and a linker merges into its
    brick (a 250-atom cluster instead of ~150). Here the bond graph, the cuts and the block labels stay those
    of the reference (the target structure: the cluster paper takes blocks from the framework's topology);
    only each bond's periodic image and length, and the images that make each block whole, come from the
    frame (minimum image in fractional coordinates, valid while bonds are shorter than half the cell).
    """
    graph = reference.graph
    if len(frame) != graph.n_atoms:
        raise ValueError(f'the frame has {len(frame)} atoms but the reference topology {graph.n_atoms}.')
    if np.any(graph.shift) and not frame.pbc.any():
        raise ValueError('a periodic reference topology cannot be mapped onto a non-periodic frame.')
    cell = frame.cell.array
    if frame.pbc.any():
        fractional = frame.get_scaled_positions(wrap=False)
        delta = fractional[graph.j] - fractional[graph.i]
        shift = -np.rint(delta).astype(np.int64) * frame.pbc.astype(np.int64)
        vectors = (delta + shift) @ cell
    else:
        shift = np.zeros_like(graph.shift)
        vectors = frame.positions[graph.j] - frame.positions[graph.i]
    mapped = BondGraph(graph.n_atoms, graph.i, graph.j, shift, np.linalg.norm(vectors, axis=1), graph.indptr)
    keep = ~reference.cut
    offsets = _offsets(graph.n_atoms, mapped, keep, reference.labels, reference.n_blocks)
    return Blocks(
        mapped,
        reference.labels,
        offsets,
        reference.cut,
        reference.coordination,
        reference.n_blocks,
        reference.has_metal,
    )
