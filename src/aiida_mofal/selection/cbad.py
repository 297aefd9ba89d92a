"""CBAD selection (Sharma & Sanvito): keep a frame when one of its cell/bond/angle/dihedral bins is new.

Every frame is measured along the reference topology (:class:`~aiida_mofal.selection.topology.CbadTopology`): the
cell lengths (Å) and angles (°), the minimum-image length of every reference bond (Å), every angle (°) and every
signed dihedral in [−180°, 180°). A value θ of a descriptor type falls in bin ``floor(θ / Δ)`` with one resolution
Δ per family. Frames are taken in input order; a frame is **accepted when at least one of its (descriptor type,
bin) pairs is not yet occupied**, and accepting it occupies all of its pairs. (This is the paper's text; its SI
pseudocode tests ``check == 6 + nbonds + angles + dihedrals``, which would accept only frames whose *every* value is
new -- the text rules.)

Because a rejected frame brings no new pair, the occupancy before frame ``f`` is the starting occupancy plus *all*
pairs of frames ``0 … f−1``; so frame ``f`` is accepted exactly when it is the first to show some pair that the
start lacks. That makes the sequential rule a vectorised "first occurrence" search, done here in chunks of frames
so memory stays bounded.

:class:`CbadOccupancy` is the occupied set (per type name, a set of bins), which a campaign carries from step to
step: seed it from a training set (:meth:`~CbadOccupancy.add`), select from a trajectory
(:meth:`~CbadOccupancy.select`), or take the one frame of an MD run that adds the most new pairs
(:meth:`~CbadOccupancy.best_frame`); store it with :meth:`~CbadOccupancy.to_dict`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .descriptors import Workspace, measure
from .topology import FAMILIES, CbadError, CbadTopology

__all__ = [
    'DEFAULT_RESOLUTIONS',
    'CbadError',
    'CbadOccupancy',
    'CbadTopology',
    'BestFrame',
    'check_numbers',
    'check_resolutions',
    'descriptor_values',
    'descriptor_bins',
    'measure',
    'frame_chunks',
    'scaled_resolutions',
]

#: Default resolutions per family (Å for lengths, degrees for angles). The paper gives no values; these make a
#: few hundred configurations out of ~10⁴ ZIF-8 frames at 300–600 K (docs/guide/cbad.md has the scan).
DEFAULT_RESOLUTIONS = {'cell_length': 0.1, 'cell_angle': 0.5, 'bond': 0.05, 'angle': 3.0, 'dihedral': 15.0}

#: frames measured together: ~2000 values per ZIF-8 frame, so ~1 MB per buffer (64 was fastest in benchmarks/cbad.py)
DEFAULT_CHUNK = 64

_OFFSET = 1 << 31  # keys pack (type, bin) into one int64: type << 32 | (bin + 2**31)


def check_resolutions(resolutions: Mapping[str, float] | None = None) -> dict[str, float]:
    """Return the defaults updated by ``resolutions``; unknown families and Δ ≤ 0 (or not finite) are refused."""
    result = dict(DEFAULT_RESOLUTIONS)
    for family, value in dict(resolutions or {}).items():
        if family not in FAMILIES:
            close = difflib.get_close_matches(str(family), FAMILIES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ''
            raise CbadError(f'unknown CBAD descriptor family {family!r}; the families are {", ".join(FAMILIES)}.{hint}')
        try:
            delta = float(value)
        except (TypeError, ValueError):
            raise CbadError(f'resolution of {family} must be a number, got {value!r}.') from None
        if not math.isfinite(delta) or delta <= 0:
            raise CbadError(f'resolution of {family} must be a finite number > 0, got {value!r}.')
        result[family] = delta
    return result


def scaled_resolutions(resolutions: Mapping[str, float], factor: float) -> dict[str, float]:
    """All resolutions multiplied by ``factor`` (the paper's way of sizing a training set)."""
    return check_resolutions({family: delta * factor for family, delta in resolutions.items()})


def descriptor_values(topology: CbadTopology, positions: np.ndarray, cells: np.ndarray, start: int = 0) -> np.ndarray:
    """All CBAD values of a stack of frames, ``(n_frames, topology.n_descriptors)`` (a view; see :func:`measure`).

    Columns: a, b, c (Å), α, β, γ (°), then bond lengths (Å), angles (°) and dihedrals (°, [−180, 180)) in the
    topology's order. ``start`` only numbers frames in error messages.
    """
    return measure(topology, positions, cells, start).T


def _instance_resolutions(topology: CbadTopology, resolutions: Mapping[str, float]) -> np.ndarray:
    families = np.array([FAMILIES.index(family) for family, _ in topology.types], dtype=np.int64)
    per_family = np.array([resolutions[family] for family in FAMILIES])
    return per_family[families[topology.instance_type]]


def _bins(
    topology: CbadTopology, positions, cells, deltas: np.ndarray, start: int, work: Workspace | None = None
) -> np.ndarray:
    """``floor(value / Δ)`` as ``(n_descriptors, n_frames)`` int64 (in ``work``'s buffer when given)."""
    scaled = measure(topology, positions, cells, start, work)
    scaled /= deltas[:, None]
    np.floor(scaled, out=scaled)
    if scaled.size and max(scaled.max(), -scaled.min()) >= _OFFSET - 1:
        raise CbadError('a CBAD bin index does not fit in 32 bits; the resolution is far too fine.')
    if work is None or work.n_frames != len(positions):
        return scaled.astype(np.int64)
    work.bins[...] = scaled
    return work.bins


def descriptor_bins(
    topology: CbadTopology, positions: np.ndarray, cells: np.ndarray, resolutions: Mapping[str, float], start: int = 0
) -> np.ndarray:
    """``floor(value / Δ)`` of every CBAD value of every frame, ``(n_frames, n_descriptors)`` int64."""
    deltas = _instance_resolutions(topology, check_resolutions(resolutions))
    return _bins(topology, positions, cells, deltas, start).T


def _stack(frames: Sequence[Atoms], start: int) -> tuple[np.ndarray, np.ndarray]:
    for offset, atoms in enumerate(frames):
        if not np.all(atoms.pbc) or atoms.cell.rank < 3:
            raise CbadError(f'frame {start + offset} is not periodic in 3D; CBAD frames need the full cell.')
    positions = np.stack([atoms.positions for atoms in frames])
    cells = np.stack([atoms.cell.array for atoms in frames])
    return positions, cells


def check_numbers(topology: CbadTopology, numbers: np.ndarray, frame: int = 0) -> None:
    """Refuse a frame whose atoms are not the reference's, in count or order."""
    numbers = np.asarray(numbers)
    if len(numbers) != topology.n_atoms:
        raise CbadError(
            f'frame {frame} has {len(numbers)} atoms but the reference has {topology.n_atoms}; CBAD frames must be '
            'configurations of the reference structure, with its atoms in the same order.'
        )
    wrong = np.flatnonzero(numbers != topology.numbers)
    if len(wrong):
        from ase.data import chemical_symbols

        atom = int(wrong[0])
        raise CbadError(
            f'frame {frame}: atom {atom} is {chemical_symbols[numbers[atom]]} but the reference has '
            f'{chemical_symbols[topology.numbers[atom]]} there; frames must list the reference atoms in the same order.'
        )


def frame_chunks(
    topology: CbadTopology, frames, cells: np.ndarray | None = None, chunk: int = DEFAULT_CHUNK
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(start, positions, cells)`` of at most ``chunk`` frames, checking atoms against the reference.

    ``frames`` is an iterable of :class:`ase.Atoms` (read lazily, e.g. ``ase.io.iread``) or, with ``cells``, a
    positions array ``(n_frames, n_atoms, 3)`` whose atoms are already known to be the reference's.
    """
    if cells is not None:
        positions = np.asarray(frames, dtype=float)
        cells = np.asarray(cells, dtype=float)
        if positions.ndim != 3 or positions.shape[1:] != (topology.n_atoms, 3) or cells.shape != (len(positions), 3, 3):
            raise CbadError(
                f'positions {positions.shape} and cells {cells.shape} do not match the reference '
                f'({topology.n_atoms} atoms): expected (n_frames, {topology.n_atoms}, 3) and (n_frames, 3, 3).'
            )
        for start in range(0, len(positions), chunk):
            yield start, positions[start : start + chunk], cells[start : start + chunk]
        return
    buffer: list[Atoms] = []
    start = 0
    for atoms in frames:
        check_numbers(topology, atoms.numbers, start + len(buffer))
        buffer.append(atoms)
        if len(buffer) == chunk:
            positions, cells_ = _stack(buffer, start)
            yield start, positions, cells_
            start, buffer = start + len(buffer), []
    if buffer:
        positions, cells_ = _stack(buffer, start)
        yield start, positions, cells_


@dataclass(frozen=True)
class BestFrame:
    """The frame of a run that adds the most new (type, bin) pairs; ``index`` is None when none adds any."""

    index: int | None
    n_new: int


class CbadOccupancy:
    """The occupied (descriptor type, bin) pairs of a training set at fixed resolutions.

    Types are keyed by name (``bond:C[…]-H[…]``, see :attr:`CbadTopology.type_names`), so an occupancy is not tied
    to one reference's atom order: a supercell or another cell of the same framework has the same types.
    """

    def __init__(self, resolutions: Mapping[str, float] | None = None, occupied: Mapping[str, Iterable[int]] = ()):
        self.resolutions = check_resolutions(resolutions)
        self._occupied: dict[str, set[int]] = {name: {int(b) for b in bins} for name, bins in dict(occupied).items()}

    # ------------------------------------------------------------------ queries and (de)serialisation
    def __len__(self) -> int:
        """Return the number of occupied (type, bin) pairs."""
        return sum(len(bins) for bins in self._occupied.values())

    def bins(self, name: str) -> frozenset[int]:
        """Occupied bins of the descriptor type ``name``."""
        return frozenset(self._occupied.get(name, ()))

    def family_counts(self) -> dict[str, int]:
        """Occupied pairs per family: the occupancy growth a campaign report plots."""
        counts = dict.fromkeys(FAMILIES, 0)
        for name, bins in self._occupied.items():
            counts[name.split(':', 1)[0]] += len(bins)
        return counts

    def to_dict(self) -> dict:
        """JSON-able form (an AiiDA ``Dict``): resolutions and, per type, the sorted occupied bins."""
        return {
            'resolutions': dict(self.resolutions),
            'occupied': [{'type': name, 'bins': sorted(bins)} for name, bins in sorted(self._occupied.items()) if bins],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> CbadOccupancy:
        """Inverse of :meth:`to_dict`."""
        unknown = set(data) - {'resolutions', 'occupied'}
        if unknown or 'resolutions' not in data:
            raise CbadError(f'not a CBAD occupancy (keys {sorted(data)}); expected resolutions and occupied.')
        return cls(data['resolutions'], {entry['type']: entry['bins'] for entry in data.get('occupied', [])})

    def copy(self) -> CbadOccupancy:
        """Return an independent copy."""
        return CbadOccupancy(self.resolutions, self._occupied)

    def check_compatible(self, resolutions: Mapping[str, float]) -> None:
        """Refuse to mix bins of different resolutions (they are different grids)."""
        resolutions = check_resolutions(resolutions)
        if resolutions != self.resolutions:
            raise CbadError(
                f'the starting occupancy was made with resolutions {self.resolutions}, not {resolutions}; '
                'bins of different resolutions cannot be compared. Use the same resolutions or start afresh.'
            )

    # ------------------------------------------------------------------ packed keys and the lookup table
    def _keys(self, topology: CbadTopology) -> np.ndarray:
        keys = [
            (np.int64(topology.type_index[name]) << 32) + np.fromiter(bins, np.int64, len(bins)) + _OFFSET
            for name, bins in self._occupied.items()
            if name in topology.type_index and bins
        ]
        return np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)

    def _store(self, topology: CbadTopology, keys: np.ndarray) -> None:
        names = topology.type_names
        for type_id, bins in zip((keys >> 32).tolist(), ((keys & 0xFFFFFFFF) - _OFFSET).tolist()):
            self._occupied.setdefault(names[type_id], set()).add(bins)

    def _new_pairs(
        self, topology: CbadTopology, frames, cells, chunk: int
    ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """Yield, per chunk, ``(start, n_frames, frame, key)`` of the values whose pair is not yet occupied.

        The occupancy changes only when the caller says so (:meth:`_occupy`), between chunks.
        """
        deltas = _instance_resolutions(topology, self.resolutions)
        row_type = topology.instance_type
        self._table = _Table(self._keys(topology), len(topology.types))
        work = None
        for start, positions, cells_ in frame_chunks(topology, frames, cells, chunk):
            if work is None or work.n_frames != len(positions):
                work = Workspace(topology, len(positions))
            bins = _bins(topology, positions, cells_, deltas, start, work)
            rows, columns = np.nonzero(self._table.new(bins, row_type, work))
            keys = (row_type[rows] << 32) + bins[rows, columns] + _OFFSET
            yield start, bins.shape[1], start + columns, keys

    def _occupy(self, topology: CbadTopology, keys: np.ndarray) -> None:
        if len(keys):
            self._store(topology, keys)
            self._table = _Table(np.union1d(self._table.keys, keys), len(topology.types))

    # ------------------------------------------------------------------ the three operations a campaign needs
    def select(
        self,
        topology: CbadTopology,
        frames,
        cells: np.ndarray | None = None,
        *,
        update: bool = True,
        chunk: int = DEFAULT_CHUNK,
    ) -> np.ndarray:
        """Return the indices (0-based, increasing) of the frames CBAD accepts in input order.

        With ``update`` (the default) their pairs are occupied afterwards.

        Frame ``f`` is accepted exactly when it is the first frame showing some pair missing from the start (see the
        module docstring), so each chunk needs only the first frame of each of its new pairs.
        """
        work = self if update else self.copy()
        accepted = []
        for _, _, frame, keys in work._new_pairs(topology, frames, cells, chunk):
            if len(keys):
                order = np.lexsort((frame, keys))
                keys, frame = keys[order], frame[order]
                first = np.ones(len(keys), dtype=bool)
                first[1:] = keys[1:] != keys[:-1]
                accepted.append(np.unique(frame[first]))
                work._occupy(topology, keys[first])
        return np.concatenate(accepted) if accepted else np.zeros(0, dtype=np.int64)

    def add(
        self, topology: CbadTopology, frames, cells: np.ndarray | None = None, *, chunk: int = DEFAULT_CHUNK
    ) -> int:
        """Occupy every pair of ``frames`` (seeding from a training set); returns the number of new pairs."""
        before = len(self)
        for _, _, _, keys in self._new_pairs(topology, frames, cells, chunk):
            self._occupy(topology, np.unique(keys))
        return len(self) - before

    def best_frame(
        self,
        topology: CbadTopology,
        frames,
        cells: np.ndarray | None = None,
        *,
        update: bool = True,
        chunk: int = DEFAULT_CHUNK,
    ) -> BestFrame:
        """Return the frame adding the most new pairs against this occupancy (the earliest on ties).

        With ``update`` (the default) its pairs are occupied afterwards.

        A temperature campaign keeps at most one configuration per MD run: this is that one.
        """
        best, best_new, best_keys = None, 0, None
        for start, count, frame, keys in self._new_pairs(topology, frames, cells, chunk):
            if not len(keys):
                continue
            pairs = np.unique(np.stack([frame, keys], axis=1), axis=0)  # distinct (frame, pair)
            counts = np.bincount(pairs[:, 0] - start, minlength=count)
            winner = int(np.argmax(counts))
            if counts[winner] > best_new:
                best, best_new = start + winner, int(counts[winner])
                best_keys = pairs[pairs[:, 0] == best, 1]
        if update and best_keys is not None:
            self._occupy(topology, best_keys)
        return BestFrame(best, best_new)


class _Table:
    """Occupied (type, bin) pairs as one dense boolean table over each type's bin range.

    A lookup costs a few array passes instead of a binary search; very sparse occupancies fall back to the search.
    """

    MAX_CELLS = 1 << 24

    def __init__(self, keys: np.ndarray, n_types: int):
        self.keys = keys
        types, bins = keys >> 32, (keys & 0xFFFFFFFF) - _OFFSET
        self.lo = np.zeros(n_types, dtype=np.int64)
        self.span = np.zeros(n_types, dtype=np.int64)
        if len(keys):
            bounds = np.searchsorted(types, np.arange(n_types + 1))
            present = bounds[1:] > bounds[:-1]
            self.lo[present] = bins[bounds[:-1][present]]
            self.span[present] = bins[bounds[1:][present] - 1] - self.lo[present] + 1
        self.base = np.concatenate([[0], np.cumsum(self.span)[:-1]])
        self.dense = int(self.span.sum()) <= self.MAX_CELLS
        self._rows = None
        if self.dense:
            self.table = np.zeros(int(self.span.sum()) + 1, dtype=bool)  # the last cell: "outside every range"
            self.table[self.base[types] + bins - self.lo[types]] = True

    def new(self, bins: np.ndarray, row_type: np.ndarray, work: Workspace | None = None) -> np.ndarray:
        """Mask of ``bins`` (rows = descriptor instances of type ``row_type``) whose pair is not occupied."""
        if not len(self.keys):
            return np.ones(bins.shape, dtype=bool)
        if not self.dense:
            keys = (row_type[:, None] << 32) + bins + _OFFSET
            position = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
            return self.keys[position] != keys
        if self._rows is None or self._rows[0] is not row_type:
            self._rows = (row_type, self.lo[row_type][:, None], self.span[row_type][:, None].astype(np.uint64))
            self._rows += (self.base[row_type][:, None],)
        _, lo, span, base = self._rows
        relative = np.subtract(bins, lo, out=None if work is None else work.relative)
        outside = np.greater_equal(relative.view(np.uint64), span, out=None if work is None else work.mask)
        relative += base
        np.putmask(relative, outside, len(self.table) - 1)  # negative or past the range: the "never occupied" cell
        occupied = np.take(self.table, relative, out=outside)
        return np.logical_not(occupied, out=occupied)
