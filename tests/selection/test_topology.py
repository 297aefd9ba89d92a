"""CBAD reference topology: the paper's 7 atom types, descriptor types, and values checked against ASE."""

import numpy as np
import pytest
from ase.build import make_supercell

from aiida_mofal.selection.cbad import descriptor_values
from aiida_mofal.selection.topology import CbadError, CbadTopology, atom_types
from tests.selection.conftest import peroxide, perturbed
from tests.structure_files import read_structure


def test_atom_type_is_element_plus_two_hops():
    # methane-like: C bonded to 4 H; each H sees C whose neighbours are H, H, H, H
    symbols = ['C', 'H', 'H', 'H', 'H']
    neighbours = [[1, 2, 3, 4], [0], [0], [0], [0]]
    assert atom_types(symbols, neighbours) == ['C[H(C),H(C),H(C),H(C)]'] + ['H[C(H,H,H,H)]'] * 4


def test_zif8_has_the_papers_seven_types(zif8_topology):
    names = zif8_topology.atom_type_names
    assert len(names) == 7
    # methyl H and ring H, methyl C, C2 (between the N), C4/C5, N and Zn (Sharma & Sanvito, Figure 1a)
    assert {'H[C(C,H,H,H)]', 'H[C(C,H,N)]', 'Zn[N(C,C,Zn),N(C,C,Zn),N(C,C,Zn),N(C,C,Zn)]'} <= set(names)
    assert sorted(name[0] for name in names) == ['C', 'C', 'C', 'H', 'H', 'N', 'Z']
    # 12 Zn x 4 Zn-N + 24 linkers x (5 ring + 1 C-CH3 + 2 ring C-H + 3 methyl C-H) bonds
    assert len(zif8_topology.bonds) == 48 + 24 * 11
    counts = zif8_topology.family_counts()
    assert counts['cell_length'] == 3 and counts['cell_angle'] == 3
    # Zn-N, N-C2, N-C4, C4-C5, C2-CH3, C4-H, CH3-H
    assert counts['bond'] == 7


def test_mof5_has_the_papers_seven_types():
    topology = CbadTopology.from_reference(read_structure('MOF-5_Trousselet2016.cif'))
    names = topology.atom_type_names
    assert len(names) == 7
    # the μ4-O bonded to four Zn, and the carboxylate O bonded to C and Zn
    assert 'O[Zn(O,O,O,O),Zn(O,O,O,O),Zn(O,O,O,O),Zn(O,O,O,O)]' in names
    assert 'O[C(C,O,O),Zn(O,O,O,O)]' in names
    assert sorted(name[0] for name in names) == ['C', 'C', 'C', 'H', 'O', 'O', 'Z']


def test_values_agree_with_ase_on_a_perturbed_zif8(zif8, zif8_topology):
    positions, cells = perturbed(zif8, 3, seed=1, sigma=0.1, strain=0.01)
    values = descriptor_values(zif8_topology, positions, cells)
    nb, na = len(zif8_topology.bonds), len(zif8_topology.angle_bonds)
    frame = zif8.copy()
    frame.positions, frame.cell = positions[2], cells[2]
    frame.wrap()  # ASE measures minimum images too, so wrapped atoms must give the same values
    np.testing.assert_allclose(values[2, :6], frame.cell.cellpar(), atol=1e-10)
    i, j = zif8_topology.bonds.T
    np.testing.assert_allclose(values[2, 6 : 6 + nb], frame.get_distances(i, j, mic=True), atol=1e-10)
    # every angle from ASE with the atom triplets recovered from the bond references
    a, b = zif8_topology.bonds[zif8_topology.angle_bonds[:, 0]], zif8_topology.bonds[zif8_topology.angle_bonds[:, 1]]
    signs = zif8_topology.angle_signs
    centre = np.where(signs[:, 0] > 0, a[:, 0], a[:, 1])
    end1 = np.where(signs[:, 0] > 0, a[:, 1], a[:, 0])
    end2 = np.where(signs[:, 1] > 0, b[:, 1], b[:, 0])
    ase_angles = frame.get_angles(np.stack([end1, centre, end2], axis=1), mic=True)
    np.testing.assert_allclose(values[2, 6 + nb : 6 + nb + na], ase_angles, atol=1e-9)
    bonds = zif8_topology.bonds[zif8_topology.dihedral_bonds]
    first = np.where(zif8_topology.dihedral_signs[:, 0] > 0, bonds[:, 0, 0], bonds[:, 0, 1])  # i of b1 = i->j
    quads = np.stack(
        [
            first,
            bonds[:, 1, 0],
            bonds[:, 1, 1],
            np.where(zif8_topology.dihedral_signs[:, 2] > 0, bonds[:, 2, 1], bonds[:, 2, 0]),
        ],
        axis=1,
    )
    ase_dihedrals = (frame.get_dihedrals(quads, mic=True) + 180.0) % 360.0 - 180.0
    delta = (values[2, 6 + nb + na :] - ase_dihedrals + 180.0) % 360.0 - 180.0
    assert np.abs(delta).max() < 1e-8


def test_dihedral_sign_range_and_wrapping():
    for target in (-179.0, -60.0, 0.0, 110.0, 179.5):
        atoms = peroxide(target)
        topology = CbadTopology.from_reference(atoms)
        value = descriptor_values(topology, atoms.positions[None], atoms.cell.array[None])[0, -1]
        assert value == pytest.approx(target, abs=1e-9)
        assert value == pytest.approx((atoms.get_dihedral(0, 1, 2, 3) + 180) % 360 - 180, abs=1e-9)
    trans = peroxide(180.0)
    topology = CbadTopology.from_reference(trans)
    assert descriptor_values(topology, trans.positions[None], trans.cell.array[None])[0, -1] == pytest.approx(-180.0)
    # atoms moved by lattice vectors (MD wraps them) measure the same
    shifted = trans.positions + np.array([[8.0, 0, 0], [0, -8.0, 0], [0, 0, 16.0], [-8.0, 8.0, 0]])
    np.testing.assert_allclose(
        descriptor_values(topology, shifted[None], trans.cell.array[None]),
        descriptor_values(topology, trans.positions[None], trans.cell.array[None]),
        atol=1e-9,
    )


def test_a_supercell_has_the_same_types(zif8_topology):
    small = peroxide(100.0, box=6.0)
    double = make_supercell(small, 2 * np.eye(3))
    assert CbadTopology.from_reference(double).types == CbadTopology.from_reference(small).types


def test_reference_refusals():
    molecule = peroxide()
    molecule.pbc = False
    with pytest.raises(CbadError, match='periodic in three dimensions'):
        CbadTopology.from_reference(molecule)
    tiny = peroxide(box=2.5)  # the O–O bond is longer than half the 2.5 Å cell
    with pytest.raises(CbadError, match='supercell'):
        CbadTopology.from_reference(tiny)
