"""Primitive rings of periodic nets, and the zinc–imidazolate net of a ZIF.

**Definition.** A ring is a simple cycle of the *infinite* periodic net. It is *primitive* when no two of its nodes
are joined by a path of the net shorter than the shorter arc of the ring between them (no "shortcut"), i.e. it
cannot be split into two smaller rings. This is the primitive-ring criterion of the R.I.N.G.S. code used by Castel &
Coudert (Le Roux & Jund, Comput. Mater. Sci. 49, 70 (2010); Yuan & Cormack, Comput. Mater. Sci. 24, 343 (2002)), the
same condition as Franzblau's shortest-path rings (Phys. Rev. B 44, 4925 (1991)).

**Periodicity.** The net is held as its quotient graph (one node per atom or building unit of the cell) whose edges
carry the integer image shift of their far end (a "voltage" graph). Searches run on the lifted graph, whose nodes
are (node, image) pairs, so a closed walk of the quotient graph that wraps the cell (non-zero net shift) is not a
ring, and distances used in the shortcut test are distances of the infinite net, not of the cell. Ring counts of a
supercell are therefore exactly those of the cell times the number of cells (tested), even when rings wrap the cell
several times. Rings are counted up to lattice translations: the numbers are rings per cell.

**Search.** Every primitive ring of even length 2k through a node s is two internally disjoint shortest paths from
s to its antipode t (both arcs are geodesics); odd rings are two geodesics to the ends of an edge. A breadth-first
search from each node (to depth ``max_size // 2``) enumerates those candidates; each is kept when the node with the
smallest index is s (so each ring is found once) and no pair of its nodes has a shortcut.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np

__all__ = ['PeriodicGraph', 'primitive_rings', 'ring_counts']

_BITS = 10  # image shift components fit in [-512, 512): plenty for a search depth of a few dozen bonds
_OFFSET = 1 << (_BITS - 1)


@dataclass(frozen=True)
class PeriodicGraph:
    """Quotient graph of a periodic net: edge ``k`` joins node ``i[k]`` (image 0) to node ``j[k]`` at ``shift[k]``.

    Each undirected edge is given once (either direction); parallel edges and edges to a node's own image are
    allowed. ``labels`` names the nodes (for example 'Zn' and 'Im') and is carried for reporting only.
    """

    n_nodes: int
    i: np.ndarray
    j: np.ndarray
    shift: np.ndarray
    labels: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ('i', 'j'):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64).reshape(-1))
        object.__setattr__(self, 'shift', np.asarray(self.shift, dtype=np.int64).reshape(-1, 3))
        if not len(self.i) == len(self.j) == len(self.shift):
            raise ValueError('i, j and shift must have one entry per edge')
        if len(self.i) and (min(self.i.min(), self.j.min()) < 0 or max(self.i.max(), self.j.max()) >= self.n_nodes):
            raise ValueError(f'edge ends must be node indices in [0, {self.n_nodes})')

    @property
    def degree(self) -> np.ndarray:
        """Number of edge ends at every node."""
        return np.bincount(np.concatenate([self.i, self.j]), minlength=self.n_nodes)

    def invariant_key(self) -> bytes:
        """Return a key equal for two graphs whose lifted nets are identical up to re-wrapping nodes into the cell.

        Shifts change when an atom crosses the cell boundary although the net does not; reducing every shift by a
        potential fixed on a spanning forest (a deterministic gauge) removes that freedom. Used to reuse the ring
        search across trajectory frames whose net did not change.
        """
        order = np.lexsort((self.j, self.i))
        i, j = self.i[order], self.j[order]
        linear = self.shift[order] @ np.array([1 << (2 * _BITS), 1 << _BITS, 1], dtype=np.int64)
        adjacency: list[list[tuple[int, int]]] = [[] for _ in range(self.n_nodes)]
        for a, b, s in zip(i.tolist(), j.tolist(), linear.tolist(), strict=True):
            adjacency[a].append((b, s))
            adjacency[b].append((a, -s))
        potential = [None] * self.n_nodes
        for root in range(self.n_nodes):
            if potential[root] is not None:
                continue
            potential[root] = 0
            stack = [root]
            while stack:
                node = stack.pop()
                for other, image in adjacency[node]:
                    if potential[other] is None:
                        potential[other] = potential[node] + image
                        stack.append(other)
        potential = np.array(potential, dtype=np.int64)
        reduced = linear - potential[j] + potential[i] if len(i) else linear
        forward = i <= j
        edges = np.column_stack(
            [np.where(forward, i, j), np.where(forward, j, i), np.where(forward, reduced, -reduced)]
        )
        edges = edges[np.lexsort(edges.T[::-1])]
        return np.int64(self.n_nodes).tobytes() + edges.tobytes()


def _linear(shift) -> int:
    return (int(shift[0]) << (2 * _BITS)) + (int(shift[1]) << _BITS) + int(shift[2])


class _Lifted:
    """Integer keys of lifted nodes: ``key = n * (base + linear(shift)) + node``, linear in the shift."""

    def __init__(self, graph: PeriodicGraph):
        self.n = graph.n_nodes
        self.base = (_OFFSET << (2 * _BITS)) + (_OFFSET << _BITS) + _OFFSET
        steps: list[set[int]] = [set() for _ in range(self.n)]
        for a, b, s in zip(graph.i.tolist(), graph.j.tolist(), graph.shift, strict=True):
            if a == b and not s.any():
                continue  # a loop on one atom is no edge of the net
            steps[a].add(self.n * _linear(s) + b - a)
            steps[b].add(-self.n * _linear(s) + a - b)
        self.steps = [sorted(step) for step in steps]

    def key(self, node: int) -> int:
        return self.n * self.base + node

    def node(self, key: int) -> int:
        return key % self.n

    def relative(self, origin: int, key: int) -> int:
        """Key of ``key`` seen from ``origin`` translated to image 0."""
        return key - origin + self.key(origin % self.n)

    def shift(self, key: int) -> tuple[int, int, int]:
        cell = key // self.n
        mask = (1 << _BITS) - 1
        return (
            (cell >> (2 * _BITS)) - _OFFSET,
            ((cell >> _BITS) & mask) - _OFFSET,
            (cell & mask) - _OFFSET,
        )


def _bfs(lifted: _Lifted, source: int, depth: int, minimum: int = 0) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Distances and shortest-path parents from lifted node ``source`` up to ``depth`` bonds.

    Only nodes of index ``>= minimum`` are entered (the candidate search of a source).
    """
    distance = {source: 0}
    parents: dict[int, list[int]] = {source: []}
    frontier = [source]
    n = lifted.n
    steps = lifted.steps
    for level in range(1, depth + 1):
        following = []
        for key in frontier:
            for step in steps[key % n]:
                other = key + step
                if minimum and other % n < minimum:
                    continue
                seen = distance.get(other)
                if seen is None:
                    distance[other] = level
                    parents[other] = [key]
                    following.append(other)
                elif seen == level:
                    parents[other].append(key)
        frontier = following
        if not frontier:
            break
    return distance, parents


def primitive_rings(graph: PeriodicGraph, max_size: int, sources=None) -> list[tuple[tuple[int, tuple], ...]]:
    """Return the primitive rings of up to ``max_size`` nodes, each once per cell.

    A ring is returned as its nodes in order, ``(node, image shift)`` pairs, translated so that its first node (the
    smallest index) sits in image 0. ``sources`` limits the nodes a ring may have as its smallest index (every ring
    must contain one; for the Zn–Im net, the Zn nodes), to save the searches that can find nothing.
    """
    if max_size < 3:
        raise ValueError(f'max_size must be at least 3 (a ring has three nodes or more), got {max_size}')
    lifted = _Lifted(graph)
    n = graph.n_nodes
    half = max_size // 2
    # distances of the infinite net from the branch nodes (degree >= 3), computed when first needed
    distances = _Distances(lifted, half)
    found: dict[tuple, tuple] = {}
    for source in range(n) if sources is None else sorted(int(s) for s in sources):
        origin = lifted.key(source)
        # candidates only through nodes of index >= source: any other ring is found from its own smallest node
        _, parents = _bfs(lifted, origin, half, minimum=source)
        for ring in _candidates(origin, parents, max_size, lifted):
            if _is_primitive(ring, lifted, distances):
                key = _canonical(ring, lifted)
                if key not in found:
                    found[key] = tuple((lifted.node(k), lifted.shift(lifted.relative(origin, k))) for k in ring)
    return list(found.values())


class _Distances:
    """Breadth-first distance tables of the infinite net from image 0 of each node, built on first use."""

    def __init__(self, lifted: _Lifted, depth: int):
        self.lifted, self.depth, self.tables = lifted, depth, {}

    def __getitem__(self, node: int) -> dict[int, int]:
        table = self.tables.get(node)
        if table is None:
            table = self.tables[node] = _bfs(self.lifted, self.lifted.key(node), self.depth)[0]
        return table


def _paths(origin: int, parents: dict[int, list[int]]):
    """All shortest paths from ``origin`` to every reached node, as (nodes, interior bitmask) pairs."""
    index = {key: position for position, key in enumerate(parents)}
    paths: dict[int, list[tuple[tuple[int, ...], int]]] = {origin: [((origin,), 0)]}
    for key, ups in parents.items():  # insertion order is breadth-first order: parents come first
        if key == origin:
            continue
        bit = 1 << index[key]
        paths[key] = [(nodes + (key,), mask | bit) for up in ups for nodes, mask in paths[up]]
    return paths, index


def _candidates(origin: int, parents: dict[int, list[int]], max_size: int, lifted: _Lifted):
    """Cycles through ``origin`` made of two internally disjoint geodesics (even) or geodesics to an edge (odd)."""
    paths, index = _paths(origin, parents)
    depth = {key: len(value[0][0]) - 1 for key, value in paths.items()}
    n = lifted.n
    for key, ups in parents.items():
        k = depth[key]
        if 2 * k <= max_size and len(ups) >= 2:
            bit = 1 << index[key]
            for (first, first_mask), (second, second_mask) in itertools.combinations(paths[key], 2):
                if (first_mask & second_mask) == bit:
                    yield first + second[-2:0:-1]
        if k == 0 or 2 * k + 1 > max_size:
            continue
        for step in lifted.steps[key % n]:  # odd rings: an edge between two nodes at the same depth
            other = key + step
            if other <= key or depth.get(other) != k:
                continue
            for first, first_mask in paths[key]:
                for second, second_mask in paths[other]:
                    if not first_mask & second_mask:
                        yield first + second[:0:-1]


def _is_primitive(ring: tuple[int, ...], lifted: _Lifted, distances: _Distances) -> bool:
    """No shortcut between two ring nodes: their net distance equals the shorter arc of the ring.

    Only pairs of branch nodes (degree >= 3) are tested. A node of degree 2 has both its neighbours on the ring, so a
    shortcut from it is a shortcut one bond shorter from one of them (to within one bond of the arc as well): testing
    the branch nodes finds every shortcut. In a ZIF net this leaves the Zn pairs, since an imidazolate joins two Zn.
    """
    size = len(ring)
    if len(set(ring)) != size:
        return False
    n = lifted.n
    base = n * lifted.base
    steps = lifted.steps
    branch = [position for position, key in enumerate(ring) if len(steps[key % n]) >= 3]
    for index, a in enumerate(branch):
        origin = ring[a]
        table = distances[origin % n]
        offset = base + origin % n - origin
        for b in branch[index + 1 :]:
            along = min(b - a, size - b + a)
            if along < 2:
                continue
            seen = table.get(ring[b] + offset)
            if seen is not None and seen < along:
                return False
    return True


def _canonical(ring: tuple[int, ...], lifted: _Lifted) -> tuple[int, ...]:
    """Return the ring as sorted keys, translated so that its smallest node sits in image 0 (smallest choice)."""
    smallest = min(lifted.node(k) for k in ring)
    keys = []
    for anchor in ring:
        if lifted.node(anchor) == smallest:
            keys.append(tuple(sorted(lifted.relative(anchor, k) for k in ring)))
    return min(keys)


def ring_counts(rings, weight_label: str | None = None, labels: tuple[str, ...] = ()) -> dict[int, int]:
    """Count rings per size; the size counts only nodes labelled ``weight_label`` when given (Zn of Zn–Im)."""
    sizes = Counter()
    for ring in rings:
        if weight_label is None:
            sizes[len(ring)] += 1
        else:
            sizes[sum(1 for node, _ in ring if labels[node] == weight_label)] += 1
    return dict(sorted(sizes.items()))
