"""A plain-Python CBAD loop written from the SI pseudocode (Figure S1), with the text's acceptance rule.

It shares only the reference topology (which bonds, angles and dihedrals exist and their types) with
:mod:`aiida_mofal.selection.cbad`; every value, bin and membership test is computed frame by frame in Python, as
``get_CBAD(i)`` and the nested ``for`` loops of the pseudocode do. The pseudocode accepts when
``check == 6 + nbonds + angles + dihedrals``; the paper's text (and this loop) accepts when ``check > 0``.
The test suite and ``benchmarks/cbad.py`` compare the vectorised selector against it.
"""

import math

FAMILY_OF_CELL = ('cell_length',) * 3 + ('cell_angle',) * 3


def _sub(a, b):
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _inverse(m):
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    return (
        ((e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det),
        ((f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det),
        ((d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det),
    )


def _row_times(v, m):
    return tuple(v[0] * m[0][k] + v[1] * m[1][k] + v[2] * m[2][k] for k in range(3))


def get_cbad(topology, positions, cell):
    """CBAD values of one frame: six cell parameters, then the bonds, angles, dihedrals of the topology."""
    cell = [tuple(float(x) for x in row) for row in cell]
    inverse = _inverse(cell)
    positions = [tuple(float(x) for x in row) for row in positions]
    lengths = [math.sqrt(_dot(v, v)) for v in cell]
    values = list(lengths)
    for p, q in ((1, 2), (0, 2), (0, 1)):
        cosine = max(-1.0, min(1.0, _dot(cell[p], cell[q]) / (lengths[p] * lengths[q])))
        values.append(math.degrees(math.acos(cosine)))
    vectors = []
    for i, j in topology.bonds.tolist():
        fractional = _row_times(_sub(positions[j], positions[i]), inverse)
        fractional = tuple(f - round(f) for f in fractional)
        vectors.append(_row_times(fractional, cell))
    values.extend(math.sqrt(_dot(v, v)) for v in vectors)

    def along(bond, sign):
        v = vectors[bond]
        return v if sign > 0 else (-v[0], -v[1], -v[2])

    for (b1, b2), (s1, s2) in zip(topology.angle_bonds.tolist(), topology.angle_signs.tolist()):
        u, w = along(b1, s1), along(b2, s2)
        n = _cross(u, w)
        values.append(math.degrees(math.atan2(math.sqrt(_dot(n, n)), _dot(u, w))))
    for bonds, signs in zip(topology.dihedral_bonds.tolist(), topology.dihedral_signs.tolist()):
        v1, v2, v3 = (along(b, s) for b, s in zip(bonds, signs))
        n2 = _cross(v2, v3)
        phi = math.degrees(math.atan2(math.sqrt(_dot(v2, v2)) * _dot(v1, n2), _dot(_cross(v1, v2), n2)))
        values.append(phi - 360.0 if phi >= 180.0 else phi)
    return values


def plain_select(topology, positions, cells, resolutions, occupied=None):
    """Indices of the accepted frames, and the occupancy ``{type index: set of bins}`` afterwards."""
    families = [family for family, _ in topology.types]
    instance_type = topology.instance_type.tolist()
    delta = [resolutions[families[t]] for t in instance_type]
    occupied = {t: set(bins) for t, bins in (occupied or {}).items()}
    for t in range(len(families)):
        occupied.setdefault(t, set())
    selected = []
    for frame in range(len(positions)):
        values = get_cbad(topology, positions[frame], cells[frame])
        check = 0
        bins = []
        for value, t, d in zip(values, instance_type, delta):
            b = math.floor(value / d)
            bins.append(b)
            if b not in occupied[t]:
                check += 1
        if check > 0:  # the text: at least one new index (the pseudocode's `check == total` would reject)
            selected.append(frame)
            for t, b in zip(instance_type, bins):
                occupied[t].add(b)
    return selected, occupied
