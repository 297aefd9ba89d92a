"""Measuring frames along a CBAD topology: cell, bond, angle and dihedral values of many frames at once.

The arithmetic of :func:`measure` is laid out for numpy: vectors as ``(3, n_items, n_frames)`` with frames innermost,
every intermediate in a reused :class:`Workspace` buffer, every sign folded into constants of the topology, and one
SIMD ``arctan`` instead of ``arctan2``. ``benchmarks/cbad.py`` measures it against a plain frame-by-frame loop.
"""

from __future__ import annotations

import numpy as np

from .topology import CbadError, CbadTopology

__all__ = ['Workspace', 'measure']


def _inverse(cells: np.ndarray) -> np.ndarray:
    """Inverse of each 3×3 cell by cofactors: ``np.linalg.inv`` costs more here than all bond vectors."""
    (a, b, c), (d, e, f), (g, h, i) = (cells[:, row].T for row in range(3))
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    rows = (
        ((e * i - f * h), (c * h - b * i), (b * f - c * e)),
        ((f * g - d * i), (a * i - c * g), (c * d - a * f)),
        ((d * h - e * g), (b * g - a * h), (a * e - b * d)),
    )
    return np.stack([np.stack([x / det for x in row], axis=1) for row in rows], axis=1)


class Workspace:
    """Buffers for :func:`measure`, reused chunk after chunk.

    Fresh arrays of this size cost more (page faults) than the arithmetic done in them.
    """

    def __init__(self, topology: CbadTopology, n_frames: int):
        n_atoms, n_bonds = topology.n_atoms, len(topology.bonds)
        n_angles, n_dihedrals = len(topology.angle_bonds), len(topology.dihedral_bonds)
        self.n_frames = n_frames
        self.xyz = np.empty((3, n_atoms, n_frames))
        self.bond = [np.empty((3, n_bonds, n_frames)) for _ in range(3)]
        self.angle = [np.empty((3, n_angles, n_frames)) for _ in range(3)]
        self.dihedral = [np.empty((3, n_dihedrals, n_frames)) for _ in range(2)]
        self.scalar = np.empty((max(n_angles, n_dihedrals), n_frames))
        self.out = np.empty((topology.n_descriptors, n_frames))
        self.bins = np.empty((topology.n_descriptors, n_frames), dtype=np.int64)
        self.mask = np.empty((topology.n_descriptors, n_frames), dtype=bool)
        self.relative = np.empty((topology.n_descriptors, n_frames), dtype=np.int64)


def _dot(a: np.ndarray, b: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """``a[0] b[0] + a[1] b[1] + a[2] b[2]`` into ``out`` (the order of a plain loop, so the same bits)."""
    np.multiply(a[0], b[0], out=out)
    np.multiply(a[1], b[1], out=tmp)
    out += tmp
    np.multiply(a[2], b[2], out=tmp)
    out += tmp
    return out


def _cross(a: np.ndarray, b: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    for k, (p, q) in enumerate(((1, 2), (2, 0), (0, 1))):
        np.multiply(a[p], b[q], out=out[k])
        np.multiply(a[q], b[p], out=tmp)
        out[k] -= tmp
    return out


def _row_times(vectors: np.ndarray, matrices: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """``out[k] = Σ_m vectors[m] matrices[:, m, k]`` for (3, n, n_frames) vectors and (n_frames, 3, 3) matrices."""
    for k in range(3):
        np.multiply(vectors[0], matrices[:, 0, k], out=out[k])
        for m in (1, 2):
            np.multiply(vectors[m], matrices[:, m, k], out=tmp)
            out[k] += tmp
    return out


def _atan2(y: np.ndarray, x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """Write ``degrees(atan2(y, x))`` into ``out`` (which may be ``y``) as ``copysign(90° − atan(x/|y|), y)``.

    numpy's ``arctan`` is SIMD and ``arctan2`` is not, and this is the costliest step of a frame. It agrees with
    ``math.atan2`` to ~1e-13°, and gives 0 for ``y = x = 0`` as ``atan2`` does (collinear atoms: no plane).
    """
    with np.errstate(divide='ignore', invalid='ignore'):
        np.abs(y, out=tmp)
        np.divide(x, tmp, out=tmp)  # |y| = 0 gives ±inf, and atan(±inf) = ±90°: the angle is 0° or 180°
    np.arctan(tmp, out=tmp)
    np.subtract(np.pi / 2, tmp, out=tmp)
    np.copysign(tmp, y, out=out)
    np.putmask(out, np.isnan(out), 0.0)  # y = x = 0; a NaN position is caught on the bond lengths
    return np.degrees(out, out=out)


def measure(
    topology: CbadTopology, positions: np.ndarray, cells: np.ndarray, start: int = 0, work: Workspace | None = None
) -> np.ndarray:
    """Measure all CBAD values of a stack of frames, as ``(n_descriptors, n_frames)`` (frames innermost).

    :func:`aiida_mofal.selection.cbad.descriptor_values` gives the frame-major view. Rows: a, b, c (Å), α, β, γ (°),
    bond lengths (Å), angles (°), signed dihedrals (°, [−180, 180)). Vectors are handled as ``(3, n_items, n_frames)``
    so that gathering bonds, angles and dihedrals copies contiguous rows; every sign is a constant of the topology,
    so lengths and products are bit for bit those of a frame-by-frame loop (the angles agree to ~1e-13°, see
    :func:`_atan2`). With ``work`` the result lives in its buffers (overwritten by the next call). ``start`` only
    numbers frames in error messages.
    """
    positions = np.asarray(positions, dtype=float)
    cells = np.asarray(cells, dtype=float)
    n_frames = len(positions)
    if work is None or work.n_frames != n_frames:
        work = Workspace(topology, n_frames)
    n_bonds, n_angles = len(topology.bonds), len(topology.angle_bonds)
    out = work.out
    columns = cells.transpose(2, 1, 0)  # (component, cell vector, frame)
    lengths = out[:3]
    np.sqrt(_dot(columns, columns, lengths, np.empty_like(lengths)), out=lengths)
    for row, (p, q) in enumerate(((1, 2), (0, 2), (0, 1)), start=3):
        cosine = (columns[0, p] * columns[0, q] + columns[1, p] * columns[1, q] + columns[2, p] * columns[2, q]) / (
            lengths[p] * lengths[q]
        )
        out[row] = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))

    # minimum-image bond vectors (3, n_bonds, n_frames): fractional differences wrapped to [-1/2, 1/2]
    work.xyz[...] = positions.transpose(2, 1, 0)
    delta, fractional, vectors = work.bond
    np.take(work.xyz, topology.bonds[:, 1], axis=1, out=delta, mode='clip')
    np.take(work.xyz, topology.bonds[:, 0], axis=1, out=vectors, mode='clip')
    delta -= vectors
    inverse = _inverse(cells)
    _row_times(delta, inverse, fractional, vectors[0])
    np.rint(fractional, out=delta)
    fractional -= delta
    _row_times(fractional, cells, vectors, delta[0])
    bond_lengths = out[6 : 6 + n_bonds]
    np.sqrt(_dot(vectors, vectors, bond_lengths, delta[0]), out=bond_lengths)
    if n_bonds:
        half_width = 0.5 / np.sqrt((inverse**2).sum(axis=1)).max(axis=1)  # face distance k = 1 / |column k of inv|
        too_long = bond_lengths.max(axis=0) >= half_width
        if too_long.any():
            frame = int(np.flatnonzero(too_long)[0])
            raise CbadError(
                f'frame {start + frame}: a reference bond is {bond_lengths[:, frame].max():.2f} Å long, not shorter '
                f'than half the cell width ({half_width[frame]:.2f} Å); the minimum image is ambiguous '
                '(use a supercell).'
            )

    # angle j: u = j->i, w = j->k from the raw bond vectors; the sign of both products is the topology's
    u, w, normal = work.angle
    np.take(vectors, topology.angle_bonds[:, 0], axis=1, out=u, mode='clip')
    np.take(vectors, topology.angle_bonds[:, 1], axis=1, out=w, mode='clip')
    scalar = work.scalar[:n_angles]
    _cross(u, w, normal, scalar)
    angles = out[6 + n_bonds : 6 + n_bonds + n_angles]
    cosine = _dot(u, w, u[0], scalar)  # u and w are no longer needed: reuse their memory
    cosine *= topology.angle_sign[:, None]
    sine = _dot(normal, normal, w[0], scalar)
    np.sqrt(sine, out=sine)
    _atan2(sine, cosine, angles, scalar)

    # dihedral i-j-k-l: atan2(|b2| b1·(b2×b3), (b1×b2)·(b2×b3)), the two normals being those of angles i-j-k, j-k-l
    first_normal, second_normal = work.dihedral
    np.take(normal, topology.dihedral_angles[:, 1], axis=1, out=second_normal, mode='clip')
    np.take(vectors, topology.dihedral_bonds[:, 0], axis=1, out=first_normal, mode='clip')  # b1 for now
    scalar = work.scalar[: len(topology.dihedral_bonds)]
    dihedrals = out[6 + n_bonds + n_angles :]
    y = _dot(first_normal, second_normal, dihedrals, scalar)
    y *= np.take(bond_lengths, topology.dihedral_bonds[:, 1], axis=0, out=scalar, mode='clip')
    y *= topology.dihedral_sign_y[:, None]
    np.take(normal, topology.dihedral_angles[:, 0], axis=1, out=first_normal, mode='clip')
    x = _dot(first_normal, second_normal, second_normal[0], scalar)
    x *= topology.dihedral_sign_x[:, None]
    _atan2(y, x, dihedrals, scalar)
    dihedrals[dihedrals >= 180.0] -= 360.0
    if not np.isfinite(out).all():
        frame = int(np.flatnonzero(~np.isfinite(out).all(axis=0))[0])
        raise CbadError(f'frame {start + frame}: a CBAD value is NaN or inf (overlapping atoms or a singular cell).')
    return out
