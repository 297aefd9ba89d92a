from collections import Counter

import ase.io
import numpy as np
import pytest

from aiida_mofal.clusters.extract import build_cluster, extract_clusters
from aiida_mofal.structures.blocks import find_blocks
from aiida_mofal.structures.bonds import bond_graph
from aiida_mofal.structures.uio66 import apply_defects, build_uio66, uio66_topology, uio66_unit_cell

from .checks import check_cluster
from .conftest import read_structure


def _all_block_clusters(atoms, **kwargs):
    graph = bond_graph(atoms)
    blocks = find_blocks(atoms, graph)
    flagged = [int(blocks.members(b)[0]) for b in range(blocks.n_blocks)]
    clusters = extract_clusters(atoms, flagged, blocks=blocks, merge_depth=0, **kwargs)
    assert len(clusters) == blocks.n_blocks  # one cluster per block: every block has been a core
    return graph, blocks, clusters


def test_every_block_cluster_of_every_shared_structure(structure):
    _, atoms = structure
    graph, _, clusters = _all_block_clusters(atoms)
    for cluster in clusters:
        check_cluster(atoms, graph, cluster)


def _defect_cells():
    pristine = uio66_unit_cell()
    top = uio66_topology(pristine)
    zr = np.flatnonzero(pristine.numbers == 40)
    return {
        'ld': apply_defects(pristine, linkers=[3], topology=top),
        'hf': apply_defects(pristine, hf_sites=zr[:1], topology=top),
        'reo': apply_defects(pristine, bricks=[2], topology=top),
        'mixed': build_uio66(1, linker=0.15, hf=0.3, brick=0.25, seed=4),
    }


@pytest.mark.parametrize('kind', ['ld', 'hf', 'reo', 'mixed'])
def test_every_block_cluster_of_every_defect_type(kind):
    atoms = _defect_cells()[kind]
    graph, _, clusters = _all_block_clusters(atoms)
    for cluster in clusters:
        check_cluster(atoms, graph, cluster)


def test_merged_cores_and_deeper_mantles_pass_the_checklist():
    atoms = build_uio66(1, linker=0.1, hf=0.2, seed=2)
    graph = bond_graph(atoms)
    blocks = find_blocks(atoms, graph)
    rng = np.random.default_rng(0)
    flagged = rng.choice(len(atoms), 30, replace=False)
    for depth in (0, 2):
        clusters = extract_clusters(atoms, flagged, mantle_depth=depth, blocks=blocks, max_clusters=3)
        for cluster in clusters:
            check_cluster(atoms, graph, cluster, complete_core=depth > 0)
    merged = extract_clusters(atoms, flagged, blocks=blocks, merge_depth=1)
    single = extract_clusters(atoms, flagged, blocks=blocks, merge_depth=0)
    assert max(c.info['n_core'] for c in merged) > max(c.info['n_core'] for c in single)
    assert len(merged) < len(single)


def test_uio66_brick_cluster_has_paper_size():
    atoms = read_structure('UiO-66-Zr_Trousselet2016.cif')
    zr = int(np.flatnonzero(atoms.numbers == 40)[0])
    (cluster,) = extract_clusters(atoms, [zr])
    assert 150 <= len(cluster) <= 200
    # brick (Zr6O4(OH)4 + 12 COO) is the core; 12 phenylenes the mantle; one H cap per phenylene
    assert Counter(cluster.arrays['role']) == {'core': 54, 'mantle': 120, 'cap': 12}
    assert cluster.info['charge'] == 0 and cluster.info['multiplicity'] == 1


@pytest.mark.parametrize('name', ['ZIF-4_Lewis2009.cif', 'ZIF-8_Coudert2017.cif', 'ZnIm2-sod_Lewis2009.cif'])
def test_zif_zn_cluster_holds_zn_four_imidazolates_and_caps(name):
    atoms = read_structure(name)
    graph = bond_graph(atoms)
    zn = int(np.flatnonzero(atoms.numbers == 30)[0])
    (cluster,) = extract_clusters(atoms, [zn])
    roles = cluster.arrays['role']
    assert list(cluster.arrays['parent_index'][roles == 'core']) == [zn]
    # the four imidazolates bonded to the Zn are the mantle
    ligands = {int(q) for q in graph.j[graph.neighbors(zn)]}
    blocks = find_blocks(atoms, graph)
    mantle_blocks = {int(blocks.labels[p]) for p in cluster.arrays['parent_index'][roles == 'mantle']}
    assert mantle_blocks == {int(blocks.labels[q]) for q in ligands} and len(mantle_blocks) == 4
    # each far N capped with one N–H: neutral imidazoles around Zn2+
    assert np.sum(roles == 'cap') == 4
    assert cluster.info['charge'] == 2 and cluster.info['multiplicity'] == 1


def test_duplicates_cap_and_uncertainty_order():
    atoms = read_structure('UiO-66-Zr_Trousselet2016.cif')
    blocks = find_blocks(atoms)
    brick = [b for b in range(blocks.n_blocks) if blocks.has_metal[b]][0]
    ring = [b for b in range(blocks.n_blocks) if not blocks.has_metal[b]]
    a, b = blocks.members(brick)[:2]
    r1, r2 = blocks.members(ring[0])[0], blocks.members(ring[5])[0]
    # two atoms of one brick: one cluster
    assert len(extract_clusters(atoms, [a, b], blocks=blocks)) == 1
    flagged = [r1, a, r2]
    u = np.zeros(len(atoms))
    u[[r1, a, r2]] = [0.1, 0.5, 0.9]
    first = extract_clusters(atoms, flagged, uncertainty=u, merge_depth=0, blocks=blocks, max_clusters=2)
    assert [c.info['seed_atom'] for c in first] == [r2, a]
    same = extract_clusters(atoms, flagged, uncertainty=u[flagged], merge_depth=0, blocks=blocks, max_clusters=2)
    assert [c.info['seed_atom'] for c in same] == [r2, a]
    with pytest.raises(ValueError, match='flagged atom indices'):
        extract_clusters(atoms, [len(atoms)])


def test_vacuum_and_extxyz_round_trip(tmp_path):
    atoms = read_structure('MOF-5_Trousselet2016.cif')
    blocks = find_blocks(atoms)
    cluster = build_cluster(atoms, blocks, [0], vacuum=8.0)
    assert np.all(cluster.positions.min(axis=0) >= 8.0 - 1e-9)
    path = tmp_path / 'c.xyz'
    ase.io.write(path, cluster, format='extxyz')
    back = ase.io.read(path, format='extxyz')
    assert back.info['charge'] == cluster.info['charge'] and back.info['multiplicity'] == cluster.info['multiplicity']
    assert list(back.arrays['role']) == list(cluster.arrays['role'])
    assert np.array_equal(back.arrays['parent_index'], cluster.arrays['parent_index'])


@pytest.mark.slow
def test_s_sup_clusters(s_sup):
    atoms, graph = s_sup.atoms, s_sup.graph  # the session's S_sup (seed 0), shared with tests/structures
    blocks = find_blocks(atoms, graph)
    rng = np.random.default_rng(1)
    clusters = extract_clusters(atoms, rng.choice(len(atoms), 60, replace=False), blocks=blocks, max_clusters=20)
    assert len(clusters) == 20
    for cluster in clusters:
        check_cluster(atoms, graph, cluster)


def test_checklist_catches_broken_clusters():
    atoms = read_structure('UiO-66-Zr_Trousselet2016.cif')
    graph = bond_graph(atoms)
    (good,) = extract_clusters(atoms, [0])
    check_cluster(atoms, graph, good)
    cap = int(np.flatnonzero(good.arrays['role'] == 'cap')[0])
    broken = [good[[k for k in range(len(good)) if k != cap]]]  # a missing cap
    moved = good.copy()
    moved.positions[cap] += 0.05  # a cap off its bond vector
    broken.append(moved)
    wrong = good.copy()
    wrong.info['charge'] = 2  # charge inconsistent with the formal-charge rule
    broken.append(wrong)
    core = good.copy()
    core.arrays['role'][np.flatnonzero(good.arrays['role'] == 'mantle')[0]] = 'core'  # core without its shell
    broken.append(core)
    for cluster in broken:
        with pytest.raises(AssertionError):
            check_cluster(atoms, graph, cluster)
