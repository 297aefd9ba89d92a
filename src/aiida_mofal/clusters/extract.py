"""Core/mantle/termination clusters cut out of periodic frameworks (cluster paper §2.4, §4.2).

A cluster is assembled from building blocks (``aiida_mofal.structures.blocks``):

- **core**: the block of a flagged atom, plus the blocks of other flagged atoms within ``merge_depth``
  block hops of it (nearby unknown atoms share one cluster);
- **mantle**: every block within ``mantle_depth`` hops of the core (default 1: the paper's first-neighbour
  cluster); a metal in the cluster always brings all its ligands, so no metal is left with a dangling
  coordination bond;
- **termination**: every cut bond X–Y with X inside and Y outside becomes X–H with the H on the X→Y
  vector at ``CAP_LENGTHS`` (C–H 1.09, N–H 1.01, O–H 0.97 Å).

Blocks are placed at explicit periodic images, so the cluster is unwrapped exactly; it is then centred in
a non-periodic orthorhombic box with ``vacuum`` Å on every side. Charge and multiplicity come from
``aiida_mofal.structures.charges`` applied to the cluster's own topology.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from aiida_mofal.structures.blocks import Blocks, find_blocks
from aiida_mofal.structures.bonds import bond_graph, graph_from_pairs
from aiida_mofal.structures.charges import formal_charges

__all__ = ['CAP_LENGTHS', 'build_cluster', 'cap_length', 'extract_clusters']

#: X–H lengths of the hydrogen caps (Å); other elements use the sum of covalent radii.
CAP_LENGTHS = {'C': 1.09, 'N': 1.01, 'O': 0.97}

Node = tuple[int, tuple[int, int, int]]
_ZERO = (0, 0, 0)


def cap_length(symbol: str) -> float:
    """X–H length used to cap a cut bond on an atom of element ``symbol`` (Å)."""
    if symbol in CAP_LENGTHS:
        return CAP_LENGTHS[symbol]
    return float(covalent_radii[atomic_numbers[symbol]] + covalent_radii[1])


def _add(a: tuple, b) -> tuple[int, int, int]:
    return (a[0] + int(b[0]), a[1] + int(b[1]), a[2] + int(b[2]))


def _grow(blocks: Blocks, start: Sequence[Node], depth: int) -> dict[Node, int]:
    """Block-graph BFS from ``start`` to ``depth`` hops; returns node -> hop count."""
    seen = {node: 0 for node in start}
    frontier = list(start)
    for hop in range(1, depth + 1):
        nxt = []
        for b, img in frontier:
            for k in blocks.block_edges(b):
                node = (int(blocks.edge_to[k]), _add(img, blocks.edge_shift[k]))
                if node not in seen:
                    seen[node] = hop
                    nxt.append(node)
        frontier = nxt
    return seen


def _close_metals(blocks: Blocks, nodes: dict[Node, int]) -> None:
    """Add the ligands of every metal block in ``nodes`` whose coordination bonds were cut."""
    todo = [n for n in nodes if blocks.has_metal[n[0]]]
    while todo:
        b, img = todo.pop()
        for k in blocks.block_edges(b):
            if not blocks.coordination[blocks.edge_index[k]]:
                continue
            node = (int(blocks.edge_to[k]), _add(img, blocks.edge_shift[k]))
            if node not in nodes:
                nodes[node] = nodes[(b, img)] + 1
                if blocks.has_metal[node[0]]:
                    todo.append(node)


def build_cluster(
    atoms: Atoms,
    blocks: Blocks,
    core: Sequence[Node] | Sequence[int],
    mantle_depth: int = 1,
    vacuum: float = 6.0,
) -> Atoms:
    """Assemble one H-capped cluster around the ``core`` blocks (ids, or (id, image) pairs).

    Returns a non-periodic ``Atoms`` with ``info`` charge, multiplicity, config_type='cluster',
    n_core/n_mantle/n_cap, core_blocks, and per-atom arrays ``role`` and ``parent_index``.
    """
    core_nodes = [c if isinstance(c, tuple) else (int(c), _ZERO) for c in core]
    nodes = _grow(blocks, core_nodes, mantle_depth)
    _close_metals(blocks, nodes)
    core_set = set(core_nodes)
    order = sorted(nodes, key=lambda n: (n not in core_set, nodes[n], n[0], n[1]))

    graph = blocks.graph
    pos, cell = atoms.positions, atoms.cell.array
    symbols = atoms.get_chemical_symbols()
    parents, images, roles = [], [], []
    for b, img in order:
        m = blocks.members(b)
        parents.extend(m.tolist())
        images.extend(_add(img, o) for o in blocks.offsets[m].tolist())
        roles.extend(['core' if (b, img) in core_set else 'mantle'] * len(m))
    index = {(p, im): c for c, (p, im) in enumerate(zip(parents, images))}
    xyz = pos[parents] + np.asarray(images, dtype=float).reshape(-1, 3) @ cell

    pairs, cap_pos, cap_on = [], [], []
    for c, (p, im) in enumerate(zip(parents, images)):
        sl = graph.neighbors(p)
        for q, s in zip(graph.j[sl].tolist(), graph.shift[sl].tolist()):
            other = index.get((q, _add(im, s)))
            if other is not None:
                if c < other:
                    pairs.append((c, other))
                continue
            d = pos[q] + np.asarray(s) @ cell - pos[p]
            cap_pos.append(xyz[c] + cap_length(symbols[p]) * d / np.linalg.norm(d))
            cap_on.append(c)
    n_in = len(parents)
    pairs.extend((c, n_in + k) for k, c in enumerate(cap_on))

    cluster = Atoms(
        [symbols[p] for p in parents] + ['H'] * len(cap_pos),
        positions=np.vstack([xyz, np.reshape(cap_pos, (-1, 3))]),
    )
    lo, hi = cluster.positions.min(axis=0), cluster.positions.max(axis=0)
    cluster.positions += vacuum - lo
    cluster.cell = np.diag(hi - lo + 2 * vacuum)
    cluster.pbc = False
    cluster.new_array('role', np.array(roles + ['cap'] * len(cap_pos), dtype='U6'))
    cluster.new_array('parent_index', np.array(parents + [-1] * len(cap_pos), dtype=int))

    fc = formal_charges(cluster, graph_from_pairs(cluster, np.array(pairs, dtype=int).reshape(-1, 2)))
    cluster.info.update(
        charge=fc.charge,
        multiplicity=fc.multiplicity,
        config_type='cluster',
        n_core=int(sum(r == 'core' for r in roles)),
        n_mantle=int(sum(r == 'mantle' for r in roles)),
        n_cap=len(cap_pos),
        core_blocks=' '.join(str(b) for b, _ in core_nodes),
    )
    return cluster


def extract_clusters(
    atoms: Atoms,
    flagged: Sequence[int],
    uncertainty: Sequence[float] | None = None,
    mantle_depth: int = 1,
    vacuum: float = 6.0,
    max_clusters: int | None = None,
    merge_depth: int = 1,
    blocks: Blocks | None = None,
) -> list[Atoms]:
    """Cut H-capped clusters around flagged atoms, most uncertain first.

    ``flagged`` are 0-based atom indices; ``uncertainty`` (per atom of ``atoms``, or per flagged atom)
    orders them, highest first — without it the given order is kept. Each unconsumed flagged atom seeds
    a cluster whose core is its block plus the blocks of flagged atoms within ``merge_depth`` block hops;
    all flagged atoms of a core are consumed. Clusters with the same core blocks are returned once, and at
    most ``max_clusters`` are returned. Pass ``blocks`` to reuse a partition across calls.
    """
    flagged = np.asarray(flagged, dtype=int).ravel()
    if len(flagged) and (flagged.min() < 0 or flagged.max() >= len(atoms)):
        raise ValueError(f'flagged atom indices must lie in [0, {len(atoms)}), got {flagged.min()}..{flagged.max()}')
    if uncertainty is not None:
        u = np.asarray(uncertainty, dtype=float).ravel()
        if len(u) == len(atoms):
            u = u[flagged]
        elif len(u) != len(flagged):
            raise ValueError('uncertainty must have one value per atom or one per flagged atom')
        flagged = flagged[np.argsort(-u, kind='stable')]
    flagged = flagged[np.sort(np.unique(flagged, return_index=True)[1])]
    if blocks is None:
        blocks = find_blocks(atoms, bond_graph(atoms))

    labels = blocks.labels
    flagged_block = np.zeros(blocks.n_blocks, dtype=bool)
    flagged_block[labels[flagged]] = True
    used_blocks: set[int] = set()
    seen_cores: set[frozenset] = set()
    clusters: list[Atoms] = []
    for atom in flagged.tolist():
        if max_clusters is not None and len(clusters) >= max_clusters:
            break
        seed = int(labels[atom])
        if seed in used_blocks:
            continue
        near = _grow(blocks, [(seed, _ZERO)], merge_depth)
        core = [n for n in near if flagged_block[n[0]] and (n[0] not in used_blocks or n[0] == seed)]
        used_blocks.update(b for b, _ in core)
        key = frozenset(b for b, _ in core)
        if key in seen_cores:
            continue
        seen_cores.add(key)
        cluster = build_cluster(atoms, blocks, core, mantle_depth=mantle_depth, vacuum=vacuum)
        cluster.info['seed_atom'] = atom
        clusters.append(cluster)
    return clusters
