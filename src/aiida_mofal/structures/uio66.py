"""UiO-66 and its point defects: linker vacancies, Zr→Hf substitution, reo node defects.

The pristine cell is UiO-66(Zr) from Trousselet et al., J. Phys. Chem. C 2016 (CC BY 4.0, via the
Coudert group's citable-data repository): F-43m, a = 20.7255 Å, 456 atoms, 4 Zr6O4(OH)4 bricks and 24 BDC
linkers. Its nine symmetry-unique sites are kept here so that no data file has to ship with the package.

Building blocks (``blocks.find_blocks``) turn the structure into bricks (Zr6O4(OH)4 with their 12
carboxylate groups) and linkers (the C6H4 rings). A defect then only deletes blocks:

- linker vacancy: delete a C6H4 ring; both carboxylate carbons it leaves behind get an H at 1.09 Å on the
  C→C(ring) vector, which turns the two carboxylates into formates (the paper's two formate caps);
- reo node defect: delete a brick and all its linkers; the neighbouring bricks are capped with formates;
- Hf substitution: change the symbol of Zr atoms;
- disconnected blocks (anything not in the largest connected piece of the framework) are dropped.

Every step keeps the cell neutral: a BDC²⁻ is replaced by two HCOO⁻, a brick [Zr6O4(OH)4]¹²⁺ leaves with
its twelve carboxylate halves, and Hf⁴⁺ replaces Zr⁴⁺.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.spacegroup import crystal
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .blocks import Blocks, find_blocks
from .bonds import bond_graph, is_metal

__all__ = ['UiO66Topology', 'apply_defects', 'build_uio66', 'uio66_topology', 'uio66_unit_cell']

#: Lattice parameter of the Trousselet 2016 UiO-66(Zr) cell (Å).
UIO66_A = 20.72551856
_SYMBOLS = ['C', 'C', 'C', 'H', 'H', 'O', 'O', 'O', 'Zr']
_BASIS = [
    (6.160343773307e-03, -2.972933411318e-01, 2.027066588682e-01),
    (6.519453905018e-03, -1.850915190330e-01, 2.323558396592e-01),
    (-3.976620133143e-03, -3.480532277426e-01, -1.519467722574e-01),
    (4.060452933853e-01, 9.395470661472e-02, 9.395470661472e-02),
    (6.404041423422e-03, 2.200872822153e-01, -1.340993029590e-01),
    (2.441533161585e-03, 3.294391698419e-01, -9.394509349610e-02),
    (-4.957147415919e-02, -4.504285258408e-01, -4.957147415919e-02),
    (4.328729888542e-01, -6.712701114581e-02, -6.712701114581e-02),
    (3.739865190310e-24, 3.798949738181e-01, 0.0),
]
#: C–H length of a formate cap (Å).
FORMATE_CH = 1.09


def uio66_unit_cell(metal: str = 'Zr') -> Atoms:
    """Return the pristine 456-atom conventional cell of UiO-66 (``metal`` = 'Zr' or 'Hf' on every site)."""
    symbols = [metal if s == 'Zr' else s for s in _SYMBOLS]
    atoms = crystal(symbols, _BASIS, spacegroup=216, cellpar=[UIO66_A] * 3 + [90.0] * 3, primitive_cell=False)
    atoms.info.clear()  # drop the Spacegroup object: it does not survive extxyz
    return atoms


@dataclass
class UiO66Topology:
    """Bricks and linkers of a UiO-66-like structure.

    ``linker_ends[k]`` are the two directed bond-graph edges from linker ``k``'s ring carbons to the
    carboxylate carbons of its bricks; ``linker_bricks[k]`` the indices (into ``bricks``) of those bricks.
    """

    blocks: Blocks
    bricks: np.ndarray
    linkers: np.ndarray
    linker_ends: np.ndarray
    linker_bricks: np.ndarray

    @property
    def n_bricks(self) -> int:
        """Number of bricks."""
        return len(self.bricks)

    @property
    def n_linkers(self) -> int:
        """Number of linkers."""
        return len(self.linkers)


def uio66_topology(atoms: Atoms, blocks: Blocks | None = None) -> UiO66Topology:
    """Find the bricks (metal blocks) and linkers (metal-free blocks bonded to two bricks) of ``atoms``."""
    if blocks is None:
        blocks = find_blocks(atoms, bond_graph(atoms))
    bricks = np.flatnonzero(blocks.has_metal)
    brick_number = np.full(blocks.n_blocks, -1)
    brick_number[bricks] = np.arange(len(bricks))
    linkers, ends, pairs = [], [], []
    for b in np.flatnonzero(~blocks.has_metal):
        edges = blocks.block_edges(b)
        if len(edges) == 2 and np.all(blocks.has_metal[blocks.edge_to[edges]]):
            linkers.append(b)
            ends.append(blocks.edge_index[edges])
            pairs.append(brick_number[blocks.edge_to[edges]])
    if not len(bricks) or not linkers:
        raise ValueError('no UiO-66 bricks and linkers found in this structure')
    return UiO66Topology(
        blocks, bricks, np.array(linkers), np.array(ends).reshape(-1, 2), np.array(pairs).reshape(-1, 2)
    )


def _nround(x: float) -> int:
    """Round half up (Python's round goes to even)."""
    return int(np.floor(x + 0.5))


def _plan(top: UiO66Topology, linkers, bricks, drop_disconnected: bool) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Which bricks and linkers go: the chosen ones, the linkers of removed bricks, disconnected pieces."""
    gone_brick = np.zeros(top.n_bricks, dtype=bool)
    gone_brick[list(bricks)] = True
    gone_linker = np.zeros(top.n_linkers, dtype=bool)
    gone_linker[list(linkers)] = True
    gone_linker |= np.any(gone_brick[top.linker_bricks], axis=1)
    dropped_bricks = dropped_linkers = 0
    if drop_disconnected and not gone_brick.all():
        alive = np.flatnonzero(~gone_linker)
        a, b = top.linker_bricks[alive, 0], top.linker_bricks[alive, 1]
        nb = top.n_bricks
        _, comp = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(nb, nb)), directed=False)
        main = np.argmax(np.bincount(comp[~gone_brick], minlength=comp.max() + 1))
        drop_b = ~gone_brick & (comp != main)
        drop_l = ~gone_linker & np.any(drop_b[top.linker_bricks], axis=1)
        dropped_bricks, dropped_linkers = int(drop_b.sum()), int(drop_l.sum())
        gone_brick |= drop_b
        gone_linker |= drop_l
    return gone_brick, gone_linker, dropped_bricks, dropped_linkers


def apply_defects(
    atoms: Atoms,
    linkers=(),
    bricks=(),
    hf_sites=(),
    drop_disconnected: bool = True,
    topology: UiO66Topology | None = None,
) -> Atoms:
    """Return a copy of ``atoms`` with the given defects.

    ``linkers`` / ``bricks`` are indices into ``topology.linkers`` / ``topology.bricks`` (linker vacancies
    and reo node defects); ``hf_sites`` are atom indices of ``atoms`` to turn into Hf. Counts are recorded
    in ``info``: ``n_linker_vacancies``, ``n_bricks_removed``, ``n_linkers_removed`` (all linkers gone,
    including those of removed or dropped bricks), ``n_bricks_dropped``, ``n_linkers_dropped``, ``n_hf``,
    and the final fractions ``c_hf``, ``c_brick``, ``c_linker`` (the paper's characterisation).
    """
    top = topology if topology is not None else uio66_topology(atoms)
    blocks, graph = top.blocks, top.blocks.graph
    gone_brick, gone_linker, dropped_bricks, dropped_linkers = _plan(top, linkers, bricks, drop_disconnected)

    remove = np.zeros(len(atoms), dtype=bool)
    remove[np.isin(blocks.labels, top.bricks[gone_brick])] = True
    remove[np.isin(blocks.labels, top.linkers[gone_linker])] = True

    # formate caps on carboxylate carbons whose ring is gone but whose brick stays
    pos, cell = atoms.positions, atoms.cell.array
    caps = []
    for k in np.flatnonzero(gone_linker):
        for end, br in zip(top.linker_ends[k], top.linker_bricks[k]):
            if gone_brick[br]:
                continue
            ring_c, carb_c = graph.i[end], graph.j[end]
            d = pos[carb_c] + graph.shift[end] @ cell - pos[ring_c]
            caps.append(pos[carb_c] - FORMATE_CH * d / np.linalg.norm(d))

    out = atoms.copy()
    symbols = np.array(out.get_chemical_symbols(), dtype=object)
    hf_sites = np.asarray(list(hf_sites), dtype=int)
    if len(hf_sites):
        if remove[hf_sites].any() or not np.all(is_metal(symbols[hf_sites])):
            raise ValueError('hf_sites must be metal atoms of bricks that stay')
        symbols[hf_sites] = 'Hf'
        out.set_chemical_symbols(list(symbols))
    out = out[~remove]
    if caps:
        out += Atoms('H' * len(caps), positions=np.array(caps), cell=out.cell, pbc=out.pbc)
    n_metal = int(is_metal(out.get_chemical_symbols()).sum())
    n_hf = int(sum(s == 'Hf' for s in out.get_chemical_symbols()))
    out.info.update(
        n_linker_vacancies=len(set(linkers)),
        n_bricks_removed=len(set(bricks)),
        n_linkers_removed=int(gone_linker.sum()),
        n_bricks_dropped=dropped_bricks,
        n_linkers_dropped=dropped_linkers,
        n_hf=n_hf,
        c_hf=n_hf / n_metal if n_metal else 0.0,
        c_brick=float(gone_brick.mean()),
        c_linker=float(gone_linker.mean()),
    )
    return out


def build_uio66(
    supercell: int = 1,
    linker: float = 0.0,
    hf: float = 0.0,
    brick: float = 0.0,
    seed: int = 0,
    metal: str = 'Zr',
) -> Atoms:
    """Build a randomly disordered ``supercell``³ UiO-66 cell, the paper's (c_hf, c_brick, c_linker) recipe.

    In order: ``round(linker × N_linkers)`` linkers are removed (formate-capped), then
    ``round(brick × N_bricks)`` bricks with all their linkers, then disconnected pieces are dropped, and
    finally ``round(hf × N_metal)`` of the remaining metal atoms become Hf — last, so that the Hf fraction
    is exact in the final cell. Fractions are of the pristine counts; rounding is half up. The same seed
    gives the same cell. S_sup is ``build_uio66(4, linker=0.2, hf=0.2, brick=0.1, seed=...)``.
    """
    for name, c in (('linker', linker), ('hf', hf), ('brick', brick)):
        if not 0.0 <= c <= 1.0:
            raise ValueError(f'{name} fraction must be in [0, 1], got {c}')
    if supercell < 1:
        raise ValueError(f'supercell must be >= 1, got {supercell}')
    rng = np.random.default_rng(seed)
    atoms = uio66_unit_cell(metal).repeat(supercell)
    top = uio66_topology(atoms)
    chosen_l = rng.choice(top.n_linkers, _nround(linker * top.n_linkers), replace=False)
    chosen_b = rng.choice(top.n_bricks, _nround(brick * top.n_bricks), replace=False)
    gone_brick = _plan(top, chosen_l, chosen_b, True)[0]
    kept = np.flatnonzero(is_metal(atoms.get_chemical_symbols()) & np.isin(top.blocks.labels, top.bricks[~gone_brick]))
    hf_sites = rng.choice(kept, _nround(hf * len(kept)), replace=False)
    out = apply_defects(atoms, chosen_l, chosen_b, hf_sites=hf_sites, topology=top)
    out.info.update(supercell=supercell, seed=seed, requested=f'{hf:g}-{brick:g}-{linker:g}')
    return out
