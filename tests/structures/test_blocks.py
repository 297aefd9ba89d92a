from collections import Counter

import numpy as np
import pytest

from aiida_mofal.structures.blocks import find_blocks
from aiida_mofal.structures.bonds import bond_graph, is_metal

from .conftest import read_structure


def _formulas(atoms, blocks):
    return Counter(blocks.formula(atoms, b) for b in range(blocks.n_blocks))


@pytest.mark.parametrize(
    'name,expected',
    [
        # Zr6O4(OH)4 + 12 carboxylate groups, and phenylene rings
        ('UiO-66-Zr_Trousselet2016.cif', {'C12H4O32Zr6': 4, 'C6H4': 24}),
        ('UiO-66-Hf_Trousselet2016.cif', {'C12H4Hf6O32': 4, 'C6H4': 24}),
        ('UiO-66_z12_Thornton2016.cif', {'C12H4O32Zr6': 4, 'C6H4': 24}),
        # formate-capped bricks: the formate stays on its brick
        ('UiO-66_formate_z11_Thornton2016.cif', {'C12H5O32Zr6': 4, 'C6H4': 22}),
        ('UiO-66_formate_reo_Thornton2016.cif', {'C12H8O32Zr6': 3, 'C6H4': 12}),
        # Zn4O(CO2)6 and phenylenes
        ('MOF-5_Trousselet2016.cif', {'C6O13Zn4': 8, 'C6H4': 24}),
        # Zn centres and imidazolates; the methyl of 2-methylimidazolate is not split off
        ('ZIF-8_Coudert2017.cif', {'Zn': 12, 'C4H5N2': 24}),
        ('ZIF-4_Lewis2009.cif', {'Zn': 16, 'C3H3N2': 32}),
        ('ZIF-4_glass01_Gaillac2020.cif', {'Zn': 16, 'C3H3N2': 32}),
        ('ZnIm2-sod_Lewis2009.cif', {'Zn': 6, 'C3H3N2': 12}),
    ],
)
def test_building_blocks(name, expected):
    atoms = read_structure(name)
    assert _formulas(atoms, find_blocks(atoms)) == expected


def test_blocks_are_whole_and_cut_bonds_are_valid(structure):
    name, atoms = structure
    g = bond_graph(atoms)
    b = find_blocks(atoms, g)
    inside = ~b.cut
    # all bonds inside a block are consistent with the block images: the block is finite and whole
    assert np.all(b.offsets[g.i[inside]] + g.shift[inside] == b.offsets[g.j[inside]])
    assert np.all(b.labels[g.i[inside]] == b.labels[g.j[inside]])
    assert np.all(b.labels[g.i[b.cut]] != b.labels[g.j[b.cut]])
    metal = is_metal(atoms.get_chemical_symbols())
    organic = b.cut & ~b.coordination
    # organic cuts: between two non-metal, non-H atoms
    assert not np.any(metal[g.i[organic]] | metal[g.j[organic]])
    assert not np.any(atoms.numbers[g.i[b.cut]] == 1) and not np.any(atoms.numbers[g.j[b.cut]] == 1)
    # metal–ligand bonds are only cut in ZIF-like nets, where nothing else can be cut
    if b.coordination.any():
        assert name.startswith('Z')
        assert not organic.any()
    # every block is whole: unwrapped block atoms lie within a few Å of each other
    pos = atoms.positions + b.offsets @ atoms.cell.array
    for k in range(b.n_blocks):
        m = b.members(k)
        assert np.ptp(pos[m], axis=0).max() < 12.0


def test_ring_bonds_and_dead_ends_are_not_cut():
    atoms = read_structure('ZIF-8_Coudert2017.cif')
    g = bond_graph(atoms)
    blocks = find_blocks(atoms, g)
    assert not np.any(blocks.cut & ~blocks.coordination)
    # with a tiny ring limit, nothing protects ring bonds, but aromatic C–C is still too short to be single
    b2 = find_blocks(atoms, g, max_ring=3, single_bond_fraction=0.0)
    # ring bonds with max_ring=3 and no length test become candidates and get cut
    assert (b2.cut & ~b2.coordination).any()


def test_block_adjacency_in_uio66():
    atoms = read_structure('UiO-66-Zr_Trousselet2016.cif')
    b = find_blocks(atoms)
    for k in range(b.n_blocks):
        n = len(b.neighbours(k))
        assert n == (12 if b.has_metal[k] else 2)


def _compressed_linker_frame():
    """UiO-66 with one carboxylate C–C(aryl) bond squeezed from 1.49 to ~1.36 Å, rattled, shifted and re-wrapped."""
    from ase.neighborlist import neighbor_list

    from aiida_mofal.structures.uio66 import uio66_unit_cell

    reference = uio66_unit_cell()
    i, j, d = neighbor_list('ijd', reference, 1.6)
    carboxylate = next(
        int(a) for a, b, length in zip(i, j, d) if reference.numbers[a] == 6 and reference.numbers[b] == 8
    )
    ring = next(int(b) for a, b, length in zip(i, j, d) if a == carboxylate and reference.numbers[b] == 6)
    frame = reference.copy()
    vector = frame.get_distance(ring, carboxylate, mic=True, vector=True)
    frame.positions[carboxylate] -= 0.13 * vector / np.linalg.norm(vector)
    frame.rattle(0.02, seed=3)
    frame.positions += [5.0, 5.0, 5.0]
    frame.wrap()  # bonds across the cell boundary change their images
    return reference, frame, carboxylate


def test_blocks_of_the_reference_topology_survive_a_compressed_bond():
    from aiida_mofal.clusters.extract import extract_clusters
    from aiida_mofal.structures.blocks import map_blocks

    reference, frame, carboxylate = _compressed_linker_frame()
    reference_blocks = find_blocks(reference)
    recomputed = find_blocks(frame)
    assert recomputed.n_blocks == reference_blocks.n_blocks - 1  # the squeezed linker merged into its brick
    mapped = map_blocks(reference_blocks, frame)
    assert mapped.n_blocks == reference_blocks.n_blocks and np.array_equal(mapped.labels, reference_blocks.labels)
    assert mapped.graph.distance.max() < 2.5  # every bond at its frame image
    # the cluster around the squeezed atom is the reference's: brick + its ligands, not brick + merged linker
    (expected,) = extract_clusters(reference, [carboxylate])
    (cluster,) = extract_clusters(frame, [carboxylate], blocks=mapped)
    (merged,) = extract_clusters(frame, [carboxylate])
    assert len(cluster) == len(expected) == 186 and len(merged) == 250
    assert cluster.info['charge'] == expected.info['charge']
    with pytest.raises(ValueError, match='frame has 455 atoms'):
        map_blocks(reference_blocks, frame[1:])
