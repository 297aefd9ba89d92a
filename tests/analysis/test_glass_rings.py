"""Primitive rings of periodic nets: toy nets, the sod and cag (ZIF-4) crystals, supercells, and a changed net.

Known ring statistics used here:

- sod (RCSR; vertex symbol 4.4.6.6.6.6, tiling [4^6.6^8]): every vertex is on two 4-rings and four 6-rings, so a cell
  of N vertices has N/2 4-rings and 2N/3 6-rings, and no other ring of up to 8 vertices.
- cag (RCSR; ZIF-4's net, vertex symbol 4.6(2).6.6.6.6, tiling [4^2.6^8]): one 4-ring and six 6-ring corners per
  vertex, so N/4 4-rings and N 6-rings; its primitive rings are the 8-, 12- and 16-membered Zn–Im rings of
  Castel & Coudert (Fig. 8), i.e. 4, 6 and 8 Zn.
"""

import numpy as np
import pytest

from aiida_mofal.analysis import network, rdf
from aiida_mofal.analysis.glass import analyse_glass
from aiida_mofal.analysis.rings import PeriodicGraph, primitive_rings, ring_counts
from tests.structure_files import read_structure


def _net(n_nodes, edges):
    i, j, shift = zip(*((a, b, s) for a, b, s in edges), strict=True)
    return PeriodicGraph(n_nodes, i, j, shift)


TOY_NETS = {
    # one node per cell: every ring wraps the cell
    'square': (_net(1, [(0, 0, (1, 0, 0)), (0, 0, (0, 1, 0))]), {4: 1}),
    'triangular': (_net(1, [(0, 0, (1, 0, 0)), (0, 0, (0, 1, 0)), (0, 0, (1, -1, 0))]), {3: 2}),
    # pcu: the 3 square faces and the 4 skew hexagons (Petrie polygons) of each cube, whose opposite corners are
    # 3 bonds apart both ways round: primitive but not strong rings
    'cubic': (_net(1, [(0, 0, (1, 0, 0)), (0, 0, (0, 1, 0)), (0, 0, (0, 0, 1))]), {4: 3, 6: 4}),
    'honeycomb': (_net(2, [(0, 1, (0, 0, 0)), (0, 1, (-1, 0, 0)), (0, 1, (0, -1, 0))]), {6: 1}),
    # diamond, primitive cell: 12 six-rings at each of the 2 atoms
    'diamond': (_net(2, [(0, 1, (0, 0, 0)), (0, 1, (-1, 0, 0)), (0, 1, (0, -1, 0)), (0, 1, (0, 0, -1))]), {6: 4}),
}


@pytest.mark.parametrize('name', TOY_NETS)
def test_toy_nets_have_their_known_primitive_rings(name):
    graph, expected = TOY_NETS[name]
    assert ring_counts(primitive_rings(graph, 10)) == expected


def test_a_closed_walk_that_wraps_the_cell_is_not_a_ring():
    # a 1D chain with one node per cell: the walk 0 -> 0 + a is closed in the cell but is no ring of the net
    chain = _net(1, [(0, 0, (1, 0, 0))])
    assert primitive_rings(chain, 12) == []


def test_returned_rings_are_closed_cycles_of_the_net():
    graph, _ = TOY_NETS['diamond']
    bonds = {(0, 1, (0, 0, 0)), (0, 1, (-1, 0, 0)), (0, 1, (0, -1, 0)), (0, 1, (0, 0, -1))}
    for ring in primitive_rings(graph, 6):
        for (a, sa), (b, sb) in zip(ring, ring[1:] + ring[:1], strict=True):
            relative = tuple(np.subtract(sb, sa)) if a == 0 else tuple(np.subtract(sa, sb))
            assert (min(a, b), max(a, b), relative) in bonds


def _zif_rings(atoms, max_size):
    return analyse_glass(atoms, pairs='Zn-N', max_ring_size=max_size)


def test_sod_has_its_4_and_6_rings_in_a_triclinic_primitive_cell():
    sod = read_structure('ZnIm2-sod_Lewis2009.cif')  # 6 Zn, rhombohedral-like primitive cell, angles ~109.5°
    result = _zif_rings(sod, 8)
    assert result['ring_details']['n_metals'] == 6 and result['ring_details']['n_linkers'] == 12
    assert result['rings'] == {'4': 3.0, '6': 4.0}  # N/2 and 2N/3 for N = 6
    assert result['ring_details']['per_metal'] == {'4': 0.5, '6': pytest.approx(2 / 3)}


def test_cag_zif4_has_4_6_and_8_rings():
    crystal = read_structure('ZIF-4_Lewis2009.cif')  # 16 Zn
    result = _zif_rings(crystal, 16)  # the paper's search depth: 32-membered Zn–Im rings
    assert result['rings'] == {'4': 4.0, '6': 16.0, '8': 32.0}


def test_supercells_have_the_rings_of_the_cell_times_the_number_of_cells():
    sod = read_structure('ZnIm2-sod_Lewis2009.cif')
    cell = _zif_rings(sod, 12)['rings']
    supercell = _zif_rings(sod.repeat((2, 2, 1)), 12)['rings']
    assert {size: 4 * count for size, count in cell.items()} == supercell
    assert cell['12'] > 0  # 12-rings (sodalite-cage equators) are primitive too; checked against matscipy below


def test_matscipy_shortest_path_rings_agree_on_a_large_cell():
    """An independent implementation (matscipy, Franzblau's SP rings on a distance-cutoff graph of the Zn atoms).

    matscipy measures shortcuts on the graph of the cell, not of the infinite net, which is only right when the cell is
    large compared with the rings: on the 2x2x2 sod supercell (48 Zn) it agrees with our search on the primitive cell.
    """
    from matscipy.rings import ring_statistics

    sod = read_structure('ZnIm2-sod_Lewis2009.cif')
    ours = _zif_rings(sod, 12)['rings']
    supercell = sod.repeat(2)
    zinc = supercell[supercell.numbers == 30]
    theirs = ring_statistics(zinc, 6.7, 13)  # Zn–Im–Zn is 6.0 Å, the next Zn–Zn (a 4-ring diagonal) 8.5 Å
    assert {str(size): float(count) / 8 for size, count in enumerate(theirs) if count} == ours


def test_the_ring_search_sees_a_changed_net_and_ignores_rewrapped_atoms():
    crystal = read_structure('ZIF-4_Lewis2009.cif')
    rewrapped = crystal.copy()
    rewrapped.positions[::7] += rewrapped.cell[0] - 2 * rewrapped.cell[2]  # the same structure, other images
    keys = [_net_key(crystal), _net_key(rewrapped)]
    assert keys[0] == keys[1]
    # remove one imidazolate: its two Zn lose a link, two 4-coordinated Zn become 3-coordinated
    imidazolate = _one_linker(crystal)
    broken = crystal.copy()
    del broken[imidazolate]
    assert _net_key(broken) != keys[0]
    result = _zif_rings(broken, 8)
    assert result['coordination_details']['Zn-N']['fractions'] == {'3': 2 / 16, '4': 14 / 16}
    assert sum(result['rings'].values()) < 4 + 16 + 32


def _contacts(atoms):
    pairs = rdf.neighbour_pairs(atoms, 2.5, np.flatnonzero(np.isin(atoms.numbers, [7, 30])))
    keep = atoms.numbers[pairs.i] != atoms.numbers[pairs.j]
    return rdf.NeighbourPairs(*(getattr(pairs, name)[keep] for name in ('i', 'j', 'distance', 'shift', 'vector')))


def _net_key(atoms):
    found = network.linkers(atoms, network.organic_bonds(atoms))
    return network.metal_linker_net(atoms, _contacts(atoms), found).graph.invariant_key()


def _one_linker(atoms):
    found = network.linkers(atoms, network.organic_bonds(atoms))
    return np.flatnonzero(found.index == 0)


def test_organic_bonds_are_those_of_the_project_bond_graph():
    from aiida_mofal.structures.bonds import bond_graph, is_metal

    glass = read_structure('ZIF-4_glass01_Gaillac2020.cif')
    graph = bond_graph(glass)
    organic = ~is_metal(glass.get_chemical_symbols())
    keep = graph.unique() & organic[graph.i] & organic[graph.j]
    expected = {(min(a, b), max(a, b)) for a, b in zip(graph.i[keep], graph.j[keep], strict=True)}
    bonds = network.organic_bonds(glass)
    assert {(min(a, b), max(a, b)) for a, b in zip(bonds.i, bonds.j, strict=True)} == expected
    assert network.linkers(glass, bonds).count == 32  # Zn16(Im)32
