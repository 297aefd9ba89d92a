"""Integrity record of an MD run: covalent non-metal–non-metal bonds broken or formed relative to the start.

A melt-quench or a hot exploration walk is only usable while the organic linkers stay whole: an imidazolate
that breaks means the potential left its domain (SCIENCE.md §7). This module compares every frame of a run
with the bond graph of the reference structure and lists, per frame, the non-metal–non-metal bonds that are
broken or newly formed. Metal–ligand bonds (Zn–N, Zr–O) are deliberately not part of the record: they break
and reform in a melt by design.

Criteria, with a hysteresis so that thermal vibration never counts as a change (``s = r_cov,i + r_cov,j``,
ASE's Cordero covalent radii, the same radii as :func:`aiida_mofal.structures.bonds.bond_graph`):

* reference bonds are those of ``bond_graph(reference, tolerance=graph_tolerance)`` (``d <= s·(1 + 0.2)``);
* a reference bond is **broken** in a frame when its minimum-image length exceeds ``s·(1 + tol_break)``.
  Default ``tol_break = 0.5``: C–H breaks above 1.61 Å, C–N above 2.21 Å, C–C above 2.28 Å, i.e. 0.5–0.9 Å
  beyond equilibrium. A Morse C–H bond (D ≈ 4.3 eV, k ≈ 31 eV/Å²) stretched by 0.5 Å costs ≈ 1.7 eV, 13 k_BT
  at 1500 K (~10⁻⁶ per bond and frame); 0.4 would cost only 10 k_BT, enough for false alarms over 10⁵–10⁶
  bond-frames of a hot run. A genuinely broken bond goes much further than this;
* a non-bonded non-metal pair is **formed** when it comes closer than ``s·(1 + tol_form)``.
  Default ``tol_form = 0.1`` (C–C 1.67 Å, C–N 1.62 Å, N–N 1.56 Å, H–H 0.68 Å): tighter than the 1.2 used to
  build the reference graph, so a pair must come well inside bonding range to count. Non-bonded contacts in
  imidazolates (N1···N3 2.2 Å, C2···C4 2.2 Å, H···H ≥ 2 Å) never reach it.

A bond whose length sits between the two thresholds keeps its reference state. The record holds no
persistence filter: one frame past the threshold counts (a real break in a melt does not come back).

Only the reference bonds and the neighbour-list candidates of non-metal atoms are ever measured, so the cost
is O(frames × (bonds + non-metal atoms)); frames are processed in chunks to bound memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.neighborlist import primitive_neighbor_list
from scipy.spatial import cKDTree

from aiida_mofal.structures.bonds import DEFAULT_TOLERANCE, bond_graph, is_metal

__all__ = [
    'DEFAULT_TOL_BREAK',
    'DEFAULT_TOL_FORM',
    'bond_changes',
    'failure_reason',
    'integrity_record',
    'run_failed',
]

#: A reference bond is broken beyond ``(r_i + r_j) * (1 + DEFAULT_TOL_BREAK)``.
DEFAULT_TOL_BREAK = 0.5
#: A non-bonded pair is a new bond within ``(r_i + r_j) * (1 + DEFAULT_TOL_FORM)``.
DEFAULT_TOL_FORM = 0.1
#: Number of bond-frame distances measured at once (bounds memory to a few tens of MB).
_CHUNK_ELEMENTS = 2_000_000


def _radii(atoms: Atoms, radii: dict[str, float] | None) -> np.ndarray:
    r = covalent_radii[atoms.numbers].copy()
    if radii:
        for k, symbol in enumerate(atoms.get_chemical_symbols()):
            if symbol in radii:
                r[k] = radii[symbol]
    return r


def _check_inputs(reference: Atoms, positions: np.ndarray, cells: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    positions = np.asarray(positions, dtype=float)
    if positions.ndim == 2:
        positions = positions[None]
    n_atoms = len(reference)
    if positions.ndim != 3 or positions.shape[1:] != (n_atoms, 3):
        raise ValueError(
            f'positions must have shape (frames, {n_atoms}, 3) for a reference of {n_atoms} atoms, '
            f'got {positions.shape}; pass the frames of the same system, atoms in the same order.'
        )
    n_frames = positions.shape[0]
    if cells is None:
        cells = np.broadcast_to(reference.cell.array, (n_frames, 3, 3))
    cells = np.asarray(cells, dtype=float)
    if cells.shape == (3, 3):
        cells = np.broadcast_to(cells, (n_frames, 3, 3))
    if cells.shape != (n_frames, 3, 3):
        raise ValueError(f'cells must have shape ({n_frames}, 3, 3) (one cell per frame), got {cells.shape}.')
    pbc = np.asarray(reference.pbc, dtype=bool)
    if pbc.any():
        volumes = np.abs(np.linalg.det(cells))
        if np.any(volumes < 1e-6) and pbc.all():
            bad = int(np.argmax(volumes < 1e-6))
            raise ValueError(f'frame {bad} has a degenerate cell (volume {volumes[bad]:.3g} Å³) in a periodic run.')
    if not np.all(np.isfinite(positions)):
        bad = int(np.argmax(~np.isfinite(positions).all(axis=(1, 2))))
        raise ValueError(f'frame {bad} holds non-finite positions (a blown-up run?); cut the trajectory before it.')
    return positions, cells


def _minimum_image(vectors: np.ndarray, cells: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """Wrap difference vectors ``(F, B, 3)`` into the minimum image of each frame's cell ``(F, 3, 3)``.

    Rounding fractional coordinates is exact for short vectors in cells that are not strongly sheared; the
    few vectors that still come out long are refined by :func:`_refine_long`.
    """
    if not pbc.any():
        return vectors
    work = np.where(pbc[None, :, None], cells, np.eye(3)[None])  # non-periodic axes may have no cell vector
    fractional = np.einsum('fbk,fkl->fbl', vectors, np.linalg.inv(work))
    fractional -= np.where(pbc, np.round(fractional), 0.0)
    return np.einsum('fbl,flm->fbm', fractional, work)


def _refine_long(vectors: np.ndarray, cells: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """Shortest length of each vector ``(K, 3)`` over the 27 neighbouring images of its cell ``(K, 3, 3)``."""
    steps = np.array([-1, 0, 1])
    shifts = np.stack(np.meshgrid(steps, steps, steps, indexing='ij'), axis=-1).reshape(-1, 3)
    shifts = shifts[np.all((shifts == 0) | pbc, axis=1)]
    images = vectors[:, None, :] + np.einsum('sk,nkl->nsl', shifts.astype(float), cells)
    return np.linalg.norm(images, axis=-1).min(axis=1)


def _bond_lengths(
    positions: np.ndarray, cells: np.ndarray, pbc: np.ndarray, i: np.ndarray, j: np.ndarray, threshold: np.ndarray
) -> np.ndarray:
    """Minimum-image lengths ``(F, B)`` of the bonds ``i–j`` in every frame."""
    n_frames, n_bonds = positions.shape[0], len(i)
    lengths = np.empty((n_frames, n_bonds))
    if n_bonds == 0:
        return lengths
    chunk = max(1, _CHUNK_ELEMENTS // n_bonds)
    for start in range(0, n_frames, chunk):
        stop = min(start + chunk, n_frames)
        vectors = _minimum_image(positions[start:stop, j] - positions[start:stop, i], cells[start:stop], pbc)
        block = np.linalg.norm(vectors, axis=-1)
        if pbc.any():
            frames, bonds = np.nonzero(block > threshold[None])
            if len(frames):
                block[frames, bonds] = _refine_long(vectors[frames, bonds], cells[start + frames], pbc)
        lengths[start:stop] = block
    return lengths


def _close_pairs(
    frame_positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoffs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``i < j`` (indices into ``frame_positions``) closer than ``cutoffs[i] + cutoffs[j]``.

    A k-d tree on the wrapped atoms plus ghost copies of the atoms within reach of each periodic face: about
    ten times faster than ASE's neighbour list for 10^4 atoms, exact for any triclinic cell at least twice
    as wide as the reach (ASE takes over below that).
    """
    n = len(frame_positions)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    reach = 2.0 * float(cutoffs.max())
    points, owner = frame_positions, np.arange(n)
    if pbc.any():
        cell_work = np.where(pbc[:, None], cell, np.eye(3))
        inverse = np.linalg.inv(cell_work)
        widths = 1.0 / np.linalg.norm(inverse, axis=0)  # distance between opposite faces
        margin = np.where(pbc, reach / widths, 0.0)
        if np.any(margin > 0.5):
            return _close_pairs_ase(frame_positions, cell, pbc, cutoffs)
        fractional = frame_positions @ inverse
        fractional = np.where(pbc, fractional % 1.0, fractional)
        wrapped = fractional @ cell_work
        ghost_points, ghost_owner = [wrapped], [np.arange(n)]
        steps = np.array([-1, 0, 1])
        shifts = np.stack(np.meshgrid(steps, steps, steps, indexing='ij'), axis=-1).reshape(-1, 3)
        shifts = shifts[np.any(shifts != 0, axis=1) & np.all((shifts == 0) | pbc, axis=1)]
        low, high = fractional < margin, fractional > 1.0 - margin
        for shift in shifts:
            select = np.ones(n, dtype=bool)
            for axis in range(3):
                if shift[axis] == 1:
                    select &= low[:, axis]
                elif shift[axis] == -1:
                    select &= high[:, axis]
            if select.any():
                ghost_points.append(wrapped[select] + shift @ cell_work)
                ghost_owner.append(np.flatnonzero(select))
        points, owner = np.concatenate(ghost_points), np.concatenate(ghost_owner)
    pairs = cKDTree(points).query_pairs(reach, output_type='ndarray')
    a, b = pairs[:, 0], pairs[:, 1]
    keep = a < n  # a pair of two ghosts repeats a pair with an original atom
    a, b = a[keep], b[keep]
    distance = np.linalg.norm(points[b] - points[a], axis=1)
    a, b = owner[a], owner[b]
    keep = (distance < cutoffs[a] + cutoffs[b]) & (a != b)
    a, b = a[keep], b[keep]
    return np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)


def _close_pairs_ase(
    frame_positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoffs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ASE's neighbour list, for cells too narrow for the ghost-atom scheme of :func:`_close_pairs`."""
    i, j = primitive_neighbor_list('ij', pbc, cell, frame_positions, cutoffs, self_interaction=False)
    keep = i < j
    return i[keep].astype(np.int64), j[keep].astype(np.int64)


def bond_changes(
    reference: Atoms,
    positions: np.ndarray,
    cells: np.ndarray | None = None,
    *,
    tol_break: float = DEFAULT_TOL_BREAK,
    tol_form: float = DEFAULT_TOL_FORM,
    graph_tolerance: float = DEFAULT_TOLERANCE,
    radii: dict[str, float] | None = None,
    list_frames: bool = True,
) -> dict[str, Any]:
    """Return the integrity record of a run: non-metal–non-metal bonds broken or formed in every frame.

    :param reference: the structure the run started from (its bond graph is the reference; its ``pbc`` is
        the run's). Atom order must match ``positions``.
    :param positions: ``(F, N, 3)`` Cartesian positions in Å, wrapped or unwrapped.
    :param cells: ``(F, 3, 3)`` cell of every frame (NPT); ``None`` uses the reference cell for all frames.
    :param tol_break: a reference bond is broken beyond ``(r_i + r_j)(1 + tol_break)``.
    :param tol_form: a non-bonded pair is formed within ``(r_i + r_j)(1 + tol_form)``.
    :param graph_tolerance: tolerance of the reference bond graph (see ``bond_graph``).
    :param radii: per-element covalent radii overriding ASE's, in Å.
    :param list_frames: also list the changed bonds of every frame with a change (``frames``).
    :returns: a JSON-serialisable dict: ``criteria``; per-frame counts ``n_broken`` / ``n_formed``; the
        distinct ``broken_bonds`` / ``formed_bonds`` (atoms, elements, first frame, frames in that state);
        ``frames`` (per changed frame, the broken and formed pairs); and a ``summary`` (``intact``, first
        frame with a change, maximum broken, atoms involved).
    """
    if not (tol_break > graph_tolerance > tol_form > -1.0):
        raise ValueError(
            'the hysteresis needs tol_break > graph_tolerance > tol_form > -1, got '
            f'tol_break={tol_break}, graph_tolerance={graph_tolerance}, tol_form={tol_form}.'
        )
    positions, cells = _check_inputs(reference, positions, cells)
    n_frames = positions.shape[0]
    pbc = np.asarray(reference.pbc, dtype=bool)
    symbols = np.array(reference.get_chemical_symbols())
    r = _radii(reference, radii)
    nonmetal = ~is_metal(symbols)

    graph = bond_graph(reference, tolerance=graph_tolerance, radii=radii)
    unique = graph.unique() & nonmetal[graph.i] & nonmetal[graph.j]
    # one entry per atom pair: a pair bonded through two images in a tiny cell is checked once
    pair_key = np.unique(
        np.minimum(graph.i[unique], graph.j[unique]) * len(reference) + np.maximum(graph.i[unique], graph.j[unique])
    )
    bond_i, bond_j = np.divmod(pair_key, len(reference))
    break_threshold = (r[bond_i] + r[bond_j]) * (1.0 + tol_break)
    lengths = _bond_lengths(positions, cells, pbc, bond_i, bond_j, break_threshold)
    broken = lengths > break_threshold[None]

    # formation: neighbour-list candidates among the non-metal atoms only
    nonmetal_index = np.flatnonzero(nonmetal)
    cutoffs = r[nonmetal_index] * (1.0 + tol_form)
    formed_frames: list[np.ndarray] = []
    formed_pairs: list[np.ndarray] = []
    for frame in range(n_frames):
        a, b = _close_pairs(positions[frame, nonmetal_index], cells[frame], pbc, cutoffs)
        if len(a) == 0:
            continue
        a, b = nonmetal_index[a], nonmetal_index[b]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keys = np.unique(lo * len(reference) + hi)
        new = ~np.isin(keys, pair_key, assume_unique=True)
        if new.any():
            formed_frames.append(np.full(int(new.sum()), frame))
            formed_pairs.append(keys[new])
    formed_frame = np.concatenate(formed_frames) if formed_frames else np.zeros(0, np.int64)
    formed_key = np.concatenate(formed_pairs) if formed_pairs else np.zeros(0, np.int64)

    return _record(
        reference=reference,
        symbols=symbols,
        n_frames=n_frames,
        bond_i=bond_i,
        bond_j=bond_j,
        broken=broken,
        formed_frame=formed_frame,
        formed_key=formed_key,
        criteria={
            'rule': 'broken: d > (r_i + r_j)(1 + tol_break); formed: d < (r_i + r_j)(1 + tol_form); '
            'non-metal pairs only, minimum image of each frame',
            'tol_break': float(tol_break),
            'tol_form': float(tol_form),
            'graph_tolerance': float(graph_tolerance),
            'radii': 'ase.data.covalent_radii' + (f' with overrides {radii}' if radii else ''),
        },
        list_frames=list_frames,
    )


def _record(
    *,
    reference: Atoms,
    symbols: np.ndarray,
    n_frames: int,
    bond_i: np.ndarray,
    bond_j: np.ndarray,
    broken: np.ndarray,
    formed_frame: np.ndarray,
    formed_key: np.ndarray,
    criteria: dict,
    list_frames: bool,
) -> dict[str, Any]:
    n_atoms = len(reference)
    n_broken = broken.sum(axis=1).astype(int)
    n_formed = np.bincount(formed_frame, minlength=n_frames).astype(int) if n_frames else np.zeros(0, int)

    broken_bonds = []
    for bond in np.flatnonzero(broken.any(axis=0)):
        frames = np.flatnonzero(broken[:, bond])
        i, j = int(bond_i[bond]), int(bond_j[bond])
        broken_bonds.append(
            {
                'atoms': [i, j],
                'elements': f'{symbols[i]}-{symbols[j]}',
                'first_frame': int(frames[0]),
                'n_frames': len(frames),
                'broken_at_end': bool(broken[-1, bond]),
            }
        )
    formed_bonds = []
    for key in np.unique(formed_key):
        frames = formed_frame[formed_key == key]
        i, j = divmod(int(key), n_atoms)
        formed_bonds.append(
            {
                'atoms': [i, j],
                'elements': f'{symbols[i]}-{symbols[j]}',
                'first_frame': int(frames.min()),
                'n_frames': len(frames),
                'formed_at_end': bool(frames.max() == n_frames - 1),
            }
        )

    frames_listing = []
    if list_frames:
        changed = np.flatnonzero((n_broken > 0) | (n_formed > 0))
        for frame in changed.tolist():
            bonds = np.flatnonzero(broken[frame])
            keys = formed_key[formed_frame == frame]
            frames_listing.append(
                {
                    'frame': frame,
                    'broken': [[int(bond_i[b]), int(bond_j[b])] for b in bonds],
                    'formed': [list(divmod(int(k), n_atoms)) for k in keys],
                }
            )

    def first(mask: np.ndarray) -> int | None:
        return int(np.argmax(mask)) if mask.any() else None

    changed_mask = (n_broken > 0) | (n_formed > 0)
    broken_atoms = sorted({a for bond in broken_bonds for a in bond['atoms']})
    formed_atoms = sorted({a for bond in formed_bonds for a in bond['atoms']})
    summary = {
        'intact': not changed_mask.any(),
        'first_change_frame': first(changed_mask),
        'first_broken_frame': first(n_broken > 0),
        'first_formed_frame': first(n_formed > 0),
        'max_broken': int(n_broken.max(initial=0)),
        'max_formed': int(n_formed.max(initial=0)),
        'broken_at_end': int(n_broken[-1]) if n_frames else 0,
        'formed_at_end': int(n_formed[-1]) if n_frames else 0,
        'n_distinct_broken': len(broken_bonds),
        'n_distinct_formed': len(formed_bonds),
        'broken_atoms': broken_atoms,
        'formed_atoms': formed_atoms,
    }
    return {
        'criteria': criteria,
        'n_frames': n_frames,
        'n_atoms': n_atoms,
        'n_reference_bonds': len(bond_i),
        'n_broken': n_broken.tolist(),
        'n_formed': n_formed.tolist(),
        'broken_bonds': broken_bonds,
        'formed_bonds': formed_bonds,
        'frames': frames_listing,
        'summary': summary,
    }


def failure_reason(
    record: dict[str, Any],
    *,
    fail_on_broken: bool = True,
    max_broken: int = 0,
    fail_on_formed: bool = False,
    max_formed: int = 0,
) -> str | None:
    """Say why a run failed its integrity check, or return None when it passed.

    The default policy is the melt-quench paper's: any broken linker bond is a failed run (SCIENCE.md §7);
    new bonds are reported but tolerated unless ``fail_on_formed``. A protocol that accepts some breakage
    (e.g. a deliberate decomposition study) raises ``max_broken`` or sets ``fail_on_broken=False``.
    """
    summary = record['summary']
    for kind, what, fail, allowed in (
        ('broken', 'non-metal bond(s) broken', fail_on_broken, max_broken),
        ('formed', 'new non-metal bond(s)', fail_on_formed, max_formed),
    ):
        if fail and summary[f'max_{kind}'] > allowed:
            listing = ', '.join(
                f'{b["elements"]} {b["atoms"]} (frame {b["first_frame"]})' for b in record[f'{kind}_bonds'][:5]
            )
            return (
                f'{summary[f"max_{kind}"]} {what} at once (allowed {allowed}), first in frame '
                f'{summary[f"first_{kind}_frame"]}: {listing}'
            )
    return None


def run_failed(record: dict[str, Any], **policy: Any) -> bool:
    """Return True when the run fails the integrity policy (keywords of :func:`failure_reason`)."""
    return failure_reason(record, **policy) is not None


def integrity_record(
    reference: Atoms, positions: np.ndarray, cells: np.ndarray, steps: np.ndarray, *, fail_on_broken: bool
) -> dict[str, Any]:
    """Return the integrity record an MD run stores: the bond changes of its frames and the protocol's verdict.

    The record of :func:`bond_changes` (without the per-frame listing) plus ``steps`` (the MD step of each frame),
    ``failed`` and ``failure_reason`` (:func:`failure_reason` when the protocol's ``fail_on_broken_bonds`` is set).
    One helper for every MD path: the MD parser (MACE and ReaxFF engines) and the joining of restarted segments.
    """
    record = bond_changes(reference, positions, cells, list_frames=False)
    record['steps'] = np.asarray(steps).tolist()
    reason = failure_reason(record) if fail_on_broken else None
    record['failed'] = reason is not None
    record['failure_reason'] = reason
    return record
