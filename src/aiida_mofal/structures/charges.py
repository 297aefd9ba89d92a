"""Formal charges, total charge and spin multiplicity from connectivity.

The rule (documented in ``docs/clusters.md``):

1. Every metal carries its oxidation state from ``OXIDATION_STATES`` (Zn 2+, Zr 4+, Hf 4+, Cu 2+, ...).
   Metal–ligand bonds are treated as dative: they do not count towards a non-metal's valence.
2. Every non-metal atom has a standard valence (H 1, C 4, N 3, O 2, ...). Its *deficit* is the valence
   minus its number of covalent (non-metal) bonds.
3. Double and triple bonds pair deficits of bonded atoms: a maximum matching of the deficit graph (an
   atom with deficit 2 may take part twice) places them, preferring to leave heteroatoms unpaired.
4. Every deficit left unpaired on N, O, S, halogens is a negative charge: carboxylate −1, imidazolate −1,
   μ3-O 2−, μ3-OH −1, formate −1; an imidazole capped with N–H is neutral. An over-bonded N, P, O, S
   (ammonium, ...) carries +1. When a carbon (or an anion next to a saturated N, P, O, S) would stay
   unpaired, a saturated neighbour may take one more bond and become +1 (imidazolium, nitro N+–O−).
5. Anything else — an unpaired deficit on carbon (radical or carbanion), a hydrogen without exactly one
   covalent bond, a carbon with more than four bonds, an element with no rule — raises ``ValueError``
   naming the atoms.

The electron count is ``sum(Z) - charge``. Unpaired electrons come only from open-shell metal ions
(high-spin, ferromagnetically coupled: ``UNPAIRED_ELECTRONS``), so the multiplicity is ``1 + n_unpaired``;
the parity of the electron count must agree with it, otherwise ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from ase import Atoms
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .bonds import BondGraph, bond_graph, is_metal

__all__ = ['OXIDATION_STATES', 'UNPAIRED_ELECTRONS', 'VALENCES', 'FormalCharges', 'formal_charges']

#: Oxidation state of every metal the rule knows.
OXIDATION_STATES: dict[str, int] = {
    'Li': 1, 'Na': 1, 'K': 1, 'Rb': 1, 'Cs': 1, 'Ag': 1,
    'Be': 2, 'Mg': 2, 'Ca': 2, 'Sr': 2, 'Ba': 2,
    'Mn': 2, 'Co': 2, 'Ni': 2, 'Cu': 2, 'Zn': 2, 'Cd': 2,
    'Al': 3, 'Ga': 3, 'In': 3, 'Sc': 3, 'Y': 3, 'La': 3, 'Cr': 3, 'Fe': 3, 'V': 3,
    'Ti': 4, 'Zr': 4, 'Hf': 4, 'Ce': 4, 'Th': 4,
}  # fmt: skip

#: Unpaired electrons of the (high-spin) metal ion; absent means closed shell (d0 or d10).
UNPAIRED_ELECTRONS: dict[str, int] = {'V': 2, 'Cr': 3, 'Mn': 5, 'Fe': 5, 'Co': 3, 'Ni': 2, 'Cu': 1}

#: Standard covalent valence of non-metals.
VALENCES: dict[str, int] = {
    'H': 1, 'B': 3, 'C': 4, 'N': 3, 'O': 2, 'F': 1, 'Si': 4, 'P': 3, 'S': 2, 'Cl': 1, 'Se': 2, 'Br': 1, 'I': 1,
}  # fmt: skip

_ANION_FORMERS = frozenset(['N', 'O', 'S', 'Se', 'F', 'Cl', 'Br', 'I', 'P'])
_ONIUM_FORMERS = frozenset(['N', 'P', 'O', 'S'])


@dataclass(frozen=True)
class FormalCharges:
    """Result of the formal-charge rule for one structure."""

    atom_charges: np.ndarray
    charge: int
    n_electrons: int
    n_unpaired: int

    @property
    def multiplicity(self) -> int:
        """Spin multiplicity 2S + 1."""
        return self.n_unpaired + 1


def _names(atoms: Atoms, idx) -> str:
    idx = list(idx)
    text = ', '.join(f'{atoms[k].symbol}{k}' for k in idx[:10])
    return text + (f' (+{len(idx) - 10} more)' if len(idx) > 10 else '')


def _leftover_fast(nodes: list[int], edges: list[tuple[int, int]], carbon: np.ndarray) -> dict[int, int] | None:
    """Exact matching by leaf pruning, then simple cycles; ``None`` when the graph is anything else.

    Every atom here has deficit 1. A leaf always belongs to some maximum matching; carbon leaves go
    first so that heteroatoms are the ones left over. What remains after pruning is handled only when it
    is a set of disjoint simple cycles (benzene, imidazolate); fused rings fall back to the general solver.
    """
    adj: dict[int, set[int]] = {a: set() for a in nodes}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    left = dict.fromkeys(nodes, 0)

    def remove(a):
        for b in adj.pop(a):
            adj[b].discard(a)

    while True:
        for a in [a for a, nb in adj.items() if not nb]:
            left[a] = 1
            del adj[a]
        leaves = [a for a, nb in adj.items() if len(nb) == 1]
        if not leaves:
            break
        a = max(leaves, key=lambda x: carbon[x])
        (b,) = adj[a]
        remove(a)
        remove(b)
    if any(len(nb) != 2 for nb in adj.values()):
        return None
    while adj:  # disjoint cycles
        start = next(iter(adj))
        cycle, prev, cur = [start], None, start
        while True:
            nxt = next(x for x in adj[cur] if x != prev)
            if nxt == start:
                break
            cycle.append(nxt)
            prev, cur = cur, nxt
        if len(cycle) % 2:
            hetero = [a for a in cycle if not carbon[a]]
            left[hetero[0] if hetero else cycle[0]] = 1
        for a in cycle:
            del adj[a]
    return left


def _leftover(
    nodes: list[int], deficit: np.ndarray, edges: list[tuple[int, int]], carbon: np.ndarray
) -> dict[int, int]:
    """Unpaired deficit per atom after a maximum matching that prefers pairing carbon."""
    if len(nodes) == 1:
        return {nodes[0]: int(deficit[nodes[0]])}
    if all(deficit[a] == 1 for a in nodes):
        fast = _leftover_fast(nodes, edges, carbon)
        if fast is not None and not any(v and carbon[a] for a, v in fast.items()):
            return fast
    return _match(nodes, deficit, edges, carbon)[0]


def _match(
    nodes: list[int],
    deficit: np.ndarray,
    edges: list[tuple[int, int]],
    carbon: np.ndarray,
    onium: list[int] = (),
    onium_edges: list[tuple[int, int]] = (),
) -> tuple[dict[int, int], list[int]]:
    """Maximum-cardinality matching, weighted to pair carbon; returns leftovers and the onium atoms used.

    An atom with deficit k appears as k copies so that it can form a double or triple bond. A saturated
    N, P, O or S in ``onium`` may take one extra bond and become +1 (imidazolium, nitro), slightly
    penalised so that it is used only when it pairs an otherwise unpaired atom.
    """
    g = nx.Graph()
    for a in nodes:
        for c in range(deficit[a]):
            g.add_node((a, c))
    for a, b in edges:
        w = 1.0 + 0.25 * (int(carbon[a]) + int(carbon[b]))
        for ca in range(deficit[a]):
            for cb in range(deficit[b]):
                g.add_edge((a, ca), (b, cb), weight=w)
    for a, o in onium_edges:  # a: deficit atom, o: onium candidate
        for ca in range(deficit[a]):
            g.add_edge((a, ca), (o, 'onium'), weight=0.9 + 0.25 * int(carbon[a]))
    matching = nx.max_weight_matching(g, maxcardinality=True)
    left = {a: int(deficit[a]) for a in nodes}
    used = []
    for x, y in matching:
        for end in (x, y):
            if end[1] == 'onium':
                used.append(end[0])
            else:
                left[end[0]] -= 1
    return left, used


def formal_charges(
    atoms: Atoms,
    graph: BondGraph | None = None,
    oxidation_states: dict[str, int] | None = None,
) -> FormalCharges:
    """Apply the formal-charge rule of this module to ``atoms`` with bonds ``graph``.

    Pass the graph when it is known (clusters carry their parent's topology); otherwise it is built
    from covalent radii. ``oxidation_states`` overrides entries of ``OXIDATION_STATES``.
    """
    if graph is None:
        graph = bond_graph(atoms)
    ox = dict(OXIDATION_STATES)
    ox.update(oxidation_states or {})
    symbols = np.array(atoms.get_chemical_symbols())
    numbers = atoms.get_atomic_numbers()
    n = len(atoms)
    metal = is_metal(symbols)
    charges = np.zeros(n, dtype=np.int64)

    unknown_metal = [k for k in np.flatnonzero(metal) if symbols[k] not in ox]
    if unknown_metal:
        raise ValueError(f'no oxidation state for metal atoms {_names(atoms, unknown_metal)}; pass oxidation_states')
    charges[metal] = [ox[s] for s in symbols[metal]]

    unknown = [k for k in np.flatnonzero(~metal) if symbols[k] not in VALENCES]
    if unknown:
        raise ValueError(f'no valence rule for atoms {_names(atoms, unknown)}')
    covalent = ~metal[graph.i] & ~metal[graph.j]
    n_cov = np.bincount(graph.i[covalent], minlength=n)
    valence = np.array([VALENCES.get(s, 0) for s in symbols])
    deficit = np.where(metal, 0, valence - n_cov)

    bad_h = np.flatnonzero((symbols == 'H') & (n_cov != 1))
    if len(bad_h):
        raise ValueError(
            f'hydrogen atoms without exactly one covalent bond (dangling or bridging): {_names(atoms, bad_h)}'
        )
    over = np.flatnonzero(deficit < 0)
    bad_over = [k for k in over if symbols[k] not in _ONIUM_FORMERS or deficit[k] < -1]
    if bad_over:
        raise ValueError(f'atoms with more bonds than their valence allows: {_names(atoms, bad_over)}')
    charges[over] += -deficit[over]
    deficit = np.maximum(deficit, 0)

    # components of the deficit graph: atoms with a deficit, joined by covalent bonds
    has = deficit > 0
    sel = covalent & has[graph.i] & has[graph.j] & (graph.i < graph.j)
    ei, ej = graph.i[sel], graph.j[sel]
    m = coo_matrix((np.ones(len(ei)), (ei, ej)), shape=(n, n))
    _, comp = connected_components(m, directed=False)
    carbon = symbols == 'C'
    nodes_by_comp: dict[int, list[int]] = {}
    for a in np.flatnonzero(has).tolist():
        nodes_by_comp.setdefault(int(comp[a]), []).append(a)
    edges_by_comp: dict[int, list[tuple[int, int]]] = {}
    for a, b in zip(ei.tolist(), ej.tolist()):
        edges_by_comp.setdefault(int(comp[a]), []).append((a, b))

    # saturated atoms that may take one more bond as onium (+1): imidazolium N, nitro N
    onium_ok = ((np.isin(symbols, ['N', 'P']) & (n_cov == 3)) | (np.isin(symbols, ['O', 'S']) & (n_cov == 2))) & (
        charges == 0
    )
    onium_sel = covalent & has[graph.i] & onium_ok[graph.j]
    onium_nb: dict[int, list[int]] = {}
    for a, o in zip(graph.i[onium_sel].tolist(), graph.j[onium_sel].tolist()):
        onium_nb.setdefault(a, []).append(o)

    leftovers: dict[int, int] = {}
    retry = []
    for c, nodes in nodes_by_comp.items():
        left = _leftover(nodes, deficit, edges_by_comp.get(c, []), carbon)
        if any(v and (carbon[a] or a in onium_nb) for a, v in left.items()):
            retry.append(c)
        else:
            leftovers.update(left)
    if retry:
        nodes = [a for c in retry for a in nodes_by_comp[c]]
        edges = [e for c in retry for e in edges_by_comp.get(c, [])]
        oedges = [(a, o) for a in nodes for o in onium_nb.get(a, [])]
        left, used = _match(nodes, deficit, edges, carbon, sorted({o for _, o in oedges}), oedges)
        leftovers.update(left)
        charges[used] += 1

    radicals = []
    for a, left in leftovers.items():
        if left == 0:
            continue
        if symbols[a] in _ANION_FORMERS:
            charges[a] -= left
        else:
            radicals.append(a)
    if radicals:
        raise ValueError(f'unsaturated atoms with no bonding partner (radical or carbanion): {_names(atoms, radicals)}')

    total = int(charges.sum())
    n_electrons = int(numbers.sum()) - total
    n_unpaired = int(sum(UNPAIRED_ELECTRONS.get(s, 0) for s in symbols[metal]))
    if (n_electrons - n_unpaired) % 2:
        raise ValueError(
            f'{n_electrons} electrons cannot hold {n_unpaired} unpaired electrons '
            f'(charge {total}); check the oxidation states of {sorted(set(symbols[metal]))}'
        )
    return FormalCharges(charges, total, n_electrons, n_unpaired)
