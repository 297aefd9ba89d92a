"""The CBAD topology of a reference structure: atom types and the bonds, angles and dihedrals to measure.

Sharma & Sanvito describe a configuration by its Cell, Bonds, Angles and Dihedrals (CBAD). Which bonds, angles
and dihedrals there are, and of which *type*, is fixed once by the reference structure:

* the bond graph is the project's (:func:`aiida_mofal.structures.bonds.bond_graph`: ``d <= 1.2 (r_i + r_j)``,
  no metal–metal, no metal–H);
* an **atom type** is the element plus the sorted first-shell labels of its neighbours, a first-shell label being
  the neighbour's element plus its own neighbours' sorted elements: two hops, e.g. ``H[C(C,H,H,H)]`` for a methyl
  hydrogen. This separates the 7 types of the paper for both ZIF-8 and MOF-5;
* descriptor types: the cell lengths a, b, c and angles α, β, γ (six types, one value each); bond types (sorted pair
  of atom types); angle types ``i-j-k`` (centre ``j``, ends sorted) over every pair of bonds sharing an atom;
  dihedral types ``i-j-k-l`` over bonded paths, oriented as the smaller of the type tuple and its reverse (the
  signed dihedral is the same read either way). Three-membered rings (``i == l``) have no dihedral.

Bond vectors are minimum images, which is exact for a bond shorter than half the cell's smallest perpendicular
width; the reference is refused when one is not (make a supercell).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from ase import Atoms

from aiida_mofal.structures.bonds import bond_graph

__all__ = ['FAMILIES', 'CELL_TYPES', 'CbadError', 'CbadTopology', 'atom_types', 'perpendicular_widths']

#: descriptor families, each with its own resolution
FAMILIES = ('cell_length', 'cell_angle', 'bond', 'angle', 'dihedral')

#: the six cell descriptor types, in the order of ``ase.Cell.cellpar()``
CELL_TYPES = (
    ('cell_length', 'a'),
    ('cell_length', 'b'),
    ('cell_length', 'c'),
    ('cell_angle', 'alpha'),
    ('cell_angle', 'beta'),
    ('cell_angle', 'gamma'),
)


class CbadError(ValueError):
    """Input that CBAD cannot describe; the message names the problem and the fix."""


def perpendicular_widths(cells: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of each cell, ``(..., 3)``: ``V / |b × c|`` etc. (Å)."""
    cells = np.asarray(cells, dtype=float)
    volume = np.abs(np.linalg.det(cells))
    areas = np.stack(
        [
            np.linalg.norm(np.cross(cells[..., 1, :], cells[..., 2, :]), axis=-1),
            np.linalg.norm(np.cross(cells[..., 2, :], cells[..., 0, :]), axis=-1),
            np.linalg.norm(np.cross(cells[..., 0, :], cells[..., 1, :]), axis=-1),
        ],
        axis=-1,
    )
    return volume[..., None] / areas


def atom_types(symbols: list[str], neighbours: list[list[int]]) -> list[str]:
    """Two-hop labels: ``element[label, label, ...]`` with ``label = element(sorted neighbour elements)``."""
    first_shell = [f'{symbols[n]}({",".join(sorted(symbols[m] for m in neighbours[n]))})' for n in range(len(symbols))]
    return [f'{symbols[a]}[{",".join(sorted(first_shell[n] for n in neighbours[a]))}]' for a in range(len(symbols))]


@dataclass(frozen=True)
class CbadTopology:
    """What to measure in every frame of one reference structure, built once by :meth:`from_reference`.

    ``bonds`` are ``(n_bonds, 2)`` atom pairs (one per undirected bond); angles and dihedrals are stored as
    references into the bond list with a sign (the bond's vector or its reverse), so every frame needs the
    minimum-image vectors of its bonds only once; ``dihedral_angles`` names the two angles whose plane normals
    (times ``dihedral_normal_signs``) are the dihedral's ``b1 × b2`` and ``b2 × b3``. ``types`` lists the descriptor
    types as ``(family, name)``; ``bond_type``, ``angle_type``, ``dihedral_type`` map each instance to its index in
    ``types`` (the six cell types come first).
    """

    numbers: np.ndarray
    atom_type_names: tuple[str, ...]
    atom_type: np.ndarray
    bonds: np.ndarray
    angle_bonds: np.ndarray
    angle_signs: np.ndarray
    dihedral_bonds: np.ndarray
    dihedral_signs: np.ndarray
    dihedral_angles: np.ndarray
    dihedral_normal_signs: np.ndarray
    types: tuple[tuple[str, str], ...]
    bond_type: np.ndarray
    angle_type: np.ndarray
    dihedral_type: np.ndarray
    type_index: dict = field(repr=False, compare=False)

    @property
    def n_atoms(self) -> int:
        """Number of atoms of the reference (and of every frame)."""
        return len(self.numbers)

    @property
    def n_descriptors(self) -> int:
        """Values measured per frame: 6 cell parameters plus every bond, angle and dihedral instance."""
        return 6 + len(self.bonds) + len(self.angle_bonds) + len(self.dihedral_bonds)

    @cached_property
    def angle_sign(self) -> np.ndarray:
        """Per angle, the product of its two bond signs: the sign of its raw cross and dot products."""
        return (self.angle_signs[:, 0] * self.angle_signs[:, 1]).astype(float)

    @cached_property
    def dihedral_sign_x(self) -> np.ndarray:
        """Sign of ``(b1 × b2)·(b2 × b3)`` relative to the dot product of the two raw angle normals."""
        first, second = self.dihedral_angles.T
        normals = self.dihedral_normal_signs
        return (normals[:, 0] * self.angle_sign[first] * normals[:, 1] * self.angle_sign[second]).astype(float)

    @cached_property
    def dihedral_sign_y(self) -> np.ndarray:
        """Sign of ``b1·(b2 × b3)`` relative to the raw first bond vector and the raw second angle normal."""
        second = self.dihedral_angles[:, 1]
        return (self.dihedral_signs[:, 0] * self.dihedral_normal_signs[:, 1] * self.angle_sign[second]).astype(float)

    @cached_property
    def instance_type(self) -> np.ndarray:
        """Descriptor type index of every value of a frame, in the order of :func:`descriptor_values`."""
        return np.concatenate([np.arange(6), self.bond_type, self.angle_type, self.dihedral_type]).astype(np.int64)

    @property
    def type_names(self) -> list[str]:
        """``family:name`` of every descriptor type (the keys of an occupancy)."""
        return [f'{family}:{name}' for family, name in self.types]

    def family_counts(self) -> dict[str, int]:
        """Return the number of descriptor types per family."""
        counts = Counter(family for family, _ in self.types)
        return {family: counts.get(family, 0) for family in FAMILIES}

    @classmethod
    def from_reference(cls, reference: Atoms) -> CbadTopology:
        """Find the bonds, angles, dihedrals and their types of ``reference`` (periodic, 3D cell)."""
        if not np.all(reference.pbc) or reference.cell.rank < 3:
            raise CbadError(
                'the CBAD reference must be periodic in three dimensions (cell lengths and angles are descriptors); '
                f'got pbc={reference.pbc.tolist()} with a rank-{reference.cell.rank} cell.'
            )
        graph = bond_graph(reference)
        widths = perpendicular_widths(reference.cell.array)
        if graph.n_bonds and graph.distance.max() >= 0.5 * widths.min():
            raise CbadError(
                f'a bond of {graph.distance.max():.2f} Å is not shorter than half the cell width '
                f'({0.5 * widths.min():.2f} Å), so minimum images along bonds are ambiguous; use a supercell '
                '(ase.build.make_supercell) as the reference and for the frames.'
            )
        symbols = reference.get_chemical_symbols()
        neighbours = [graph.j[graph.neighbors(a)].tolist() for a in range(len(reference))]
        labels = atom_types(symbols, neighbours)
        names = tuple(sorted(set(labels)))
        atom_type = np.array([names.index(label) for label in labels], dtype=np.int64)

        # one bond id per directed edge, with the sign of the edge relative to the stored direction
        canonical = graph.unique()
        reverse = graph.reverse_index()
        bond_of_edge = np.empty(len(graph.i), dtype=np.int64)
        bond_of_edge[canonical] = np.arange(canonical.sum())
        bond_of_edge[~canonical] = bond_of_edge[reverse[~canonical]]
        sign_of_edge = np.where(canonical, 1, -1).astype(np.int8)
        bonds = np.stack([graph.i[canonical], graph.j[canonical]], axis=1)

        angle_edges = []
        for atom in range(len(reference)):
            edges = range(graph.indptr[atom], graph.indptr[atom + 1])
            angle_edges.extend((e1, e2) for n, e1 in enumerate(edges) for e2 in list(edges)[n + 1 :])
        angle_edges = np.array(angle_edges, dtype=np.int64).reshape(-1, 2)

        dihedral_edges = []  # (edge j->i, central edge j->k, edge k->l)
        for centre in np.flatnonzero(canonical):
            j, k = graph.i[centre], graph.j[centre]
            for e1 in range(graph.indptr[j], graph.indptr[j + 1]):
                if e1 == centre:
                    continue
                for e3 in range(graph.indptr[k], graph.indptr[k + 1]):
                    if e3 == reverse[centre]:
                        continue
                    if graph.j[e1] == graph.j[e3] and np.array_equal(
                        graph.shift[e1], graph.shift[centre] + graph.shift[e3]
                    ):
                        continue  # three-membered ring: i and l are the same atom
                    dihedral_edges.append((e1, centre, e3))
        dihedral_edges = np.array(dihedral_edges, dtype=np.int64).reshape(-1, 3)

        t = atom_type
        types = list(CELL_TYPES)
        index = {key: n for n, key in enumerate(types)}

        def type_id(family: str, tuple_: tuple[int, ...]) -> int:
            key = (family, '-'.join(names[a] for a in tuple_))
            if key not in index:
                index[key] = len(types)
                types.append(key)
            return index[key]

        bond_type = [type_id('bond', tuple(sorted((t[a], t[b])))) for a, b in bonds]
        angle_type = []
        for e1, e2 in angle_edges:
            ends = sorted((t[graph.j[e1]], t[graph.j[e2]]))
            angle_type.append(type_id('angle', (ends[0], t[graph.i[e1]], ends[1])))
        dihedral_type = []
        for e1, centre, e3 in dihedral_edges:
            forward = (t[graph.j[e1]], t[graph.i[centre]], t[graph.j[centre]], t[graph.j[e3]])
            dihedral_type.append(type_id('dihedral', min(forward, forward[::-1])))

        # a dihedral's plane normals are the cross products its angles already need: b1 x b2 = -(j->i) x (j->k) and
        # b2 x b3 = (j->k) x (k->l) = -(k->j) x (k->l), each up to the order in which the angle stores its edges
        angle_of = {(int(e1), int(e2)): n for n, (e1, e2) in enumerate(angle_edges)}
        dihedral_angles = np.zeros((len(dihedral_edges), 2), dtype=np.int64)
        dihedral_normal_signs = np.zeros((len(dihedral_edges), 2), dtype=np.int8)
        for n, (e1, centre, e3) in enumerate(dihedral_edges.tolist()):
            first = angle_of.get((e1, centre))
            dihedral_angles[n, 0], dihedral_normal_signs[n, 0] = (
                (first, -1) if first is not None else (angle_of[(centre, e1)], 1)
            )
            second = angle_of.get((int(reverse[centre]), e3))
            dihedral_angles[n, 1], dihedral_normal_signs[n, 1] = (
                (second, -1) if second is not None else (angle_of[(e3, int(reverse[centre]))], 1)
            )

        # angle i-j-k: vectors j->i and j->k; dihedral i-j-k-l: i->j (= -(j->i)), j->k, k->l
        angle_bonds = bond_of_edge[angle_edges]
        angle_signs = sign_of_edge[angle_edges]
        dihedral_bonds = bond_of_edge[dihedral_edges]
        dihedral_signs = sign_of_edge[dihedral_edges] * np.array([-1, 1, 1], dtype=np.int8)
        # types in a stable order: cell first, then by family and name, so that indices do not depend on atom order
        order = sorted(range(6, len(types)), key=lambda n: (FAMILIES.index(types[n][0]), types[n][1]))
        remap = np.empty(len(types), dtype=np.int64)
        remap[:6] = np.arange(6)
        remap[order] = np.arange(6, len(types))
        sorted_types = tuple(types[:6]) + tuple(types[n] for n in order)
        return cls(
            numbers=reference.get_atomic_numbers().copy(),
            atom_type_names=names,
            atom_type=atom_type,
            bonds=bonds,
            angle_bonds=angle_bonds,
            angle_signs=angle_signs,
            dihedral_bonds=dihedral_bonds,
            dihedral_signs=dihedral_signs,
            dihedral_angles=dihedral_angles,
            dihedral_normal_signs=dihedral_normal_signs,
            types=sorted_types,
            bond_type=remap[np.array(bond_type, dtype=np.int64)],
            angle_type=remap[np.array(angle_type, dtype=np.int64)],
            dihedral_type=remap[np.array(dihedral_type, dtype=np.int64)],
            type_index={f'{family}:{name}': n for n, (family, name) in enumerate(sorted_types)},
        )
