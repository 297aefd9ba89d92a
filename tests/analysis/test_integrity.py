"""The integrity record: bonds broken or formed relative to the start, with thermal noise ignored."""

import numpy as np
import pytest
from ase.build import molecule

from aiida_mofal.analysis.integrity import (
    _close_pairs,
    _close_pairs_ase,
    bond_changes,
    failure_reason,
    run_failed,
)
from aiida_mofal.structures.bonds import bond_graph, is_metal
from tests.structure_files import read_structure


@pytest.fixture(scope='module')
def zif4():
    return read_structure('ZIF-4_Lewis2009.cif')


def _frames(atoms, n_frames):
    return np.repeat(atoms.positions[None], n_frames, axis=0), np.repeat(atoms.cell.array[None], n_frames, axis=0)


def _linkers(atoms):
    """Connected components of the non-metal bond graph: the imidazolates of a ZIF."""
    import networkx as nx

    graph = bond_graph(atoms)
    nonmetal = ~is_metal(atoms.get_chemical_symbols())
    keep = nonmetal[graph.i] & nonmetal[graph.j]
    g = nx.Graph()
    g.add_nodes_from(np.flatnonzero(nonmetal).tolist())
    g.add_edges_from(zip(graph.i[keep].tolist(), graph.j[keep].tolist()))
    return [sorted(c) for c in nx.connected_components(g)]


def _cn_bond(atoms, crossing: bool):
    """A C–N bond of an imidazolate, one that crosses the cell boundary or one that does not."""
    graph = bond_graph(atoms)
    symbols = np.array(atoms.get_chemical_symbols())
    crosses = np.any(graph.shift != 0, axis=1)
    for k in np.flatnonzero((symbols[graph.i] == 'C') & (symbols[graph.j] == 'N') & (crosses == crossing)):
        return int(graph.i[k]), int(graph.j[k]), graph.shift[k]
    raise AssertionError('no such bond in the test structure')


def test_intact_reference_is_intact(zif4):
    positions, cells = _frames(zif4, 3)
    record = bond_changes(zif4, positions, cells)
    assert record['summary']['intact']
    assert record['n_broken'] == [0, 0, 0] and record['n_formed'] == [0, 0, 0]
    # ZIF-4 Zn(C3H3N2)2: every imidazolate has 5 ring bonds + 3 C–H = 8 non-metal bonds
    assert record['n_reference_bonds'] == 8 * len(_linkers(zif4))
    assert failure_reason(record) is None and not run_failed(record)


def test_pulled_bond_is_flagged(zif4):
    c, n, _ = _cn_bond(zif4, crossing=False)
    positions, cells = _frames(zif4, 6)
    direction = zif4.positions[c] - zif4.positions[n]
    direction /= np.linalg.norm(direction)
    # pull the carbon away from the nitrogen, further in every frame from frame 2 on
    for frame in range(2, 6):
        positions[frame, c] += direction * 0.5 * (frame - 1)
    record = bond_changes(zif4, positions, cells)
    summary = record['summary']
    broken_pairs = [tuple(b['atoms']) for b in record['broken_bonds']]
    assert tuple(sorted((c, n))) in broken_pairs
    assert all(c in pair for pair in broken_pairs)  # only bonds of the moved atom
    # 0.5 Å is inside the hysteresis band (1.36 -> 1.86 < 2.21 Å), 1.0 Å is past it
    assert summary['first_broken_frame'] == 3 and summary['first_change_frame'] == 3
    assert record['n_broken'][:3] == [0, 0, 0]
    assert summary['max_broken'] >= 1 and c in summary['broken_atoms'] and n in summary['broken_atoms']
    assert record['frames'][0]['frame'] == 3 and [min(c, n), max(c, n)] in record['frames'][0]['broken']
    reason = failure_reason(record)
    assert reason is not None and 'C-N' in reason and 'frame 3' in reason
    assert not run_failed(record, max_broken=summary['max_broken'])
    assert not run_failed(record, fail_on_broken=False)


def test_thermal_noise_is_not_a_change(zif4):
    rng = np.random.default_rng(7)
    positions, cells = _frames(zif4, 20)
    positions = positions + rng.normal(0.0, 0.05, positions.shape)
    record = bond_changes(zif4, positions, cells)
    assert record['summary']['intact'], record['summary']
    # the same noise with no hysteresis (break threshold at the graph tolerance) does flag bonds: the band matters
    strict = bond_changes(zif4, positions + rng.normal(0.0, 0.1, positions.shape), cells, tol_break=0.21)
    assert strict['summary']['max_broken'] > 0


def test_formed_bond_between_linkers(zif4):
    linkers = _linkers(zif4)
    first, second = np.array(linkers[0]), np.array(linkers[1:][0])
    carbons = np.flatnonzero(zif4.numbers == 6)
    # closest C–C pair between linker 0 and any other linker, minimum image
    others = np.setdiff1d(carbons, first)
    mine = np.intersect1d(carbons, first)
    best = None
    for a in mine:
        d = zif4.get_distances(a, others, mic=True, vector=True)
        k = int(np.argmin(np.linalg.norm(d, axis=1)))
        if best is None or np.linalg.norm(d[k]) < np.linalg.norm(best[2]):
            best = (int(a), int(others[k]), d[k])
    a, b, vector = best
    assert np.linalg.norm(vector) > 2.5 and len(second) > 0
    positions, cells = _frames(zif4, 2)
    # move the whole of linker 0 rigidly so that the chosen carbons sit 1.45 Å apart: nothing in it breaks
    distance = np.linalg.norm(vector)
    positions[1, first] += vector / distance * (distance - 1.45)
    record = bond_changes(zif4, positions, cells)
    formed = [tuple(f['atoms']) for f in record['formed_bonds']]
    assert (min(a, b), max(a, b)) in formed
    assert record['summary']['max_broken'] == 0 and record['summary']['first_formed_frame'] == 1
    assert record['n_formed'][0] == 0
    assert failure_reason(record) is None  # new bonds are tolerated by default ...
    assert run_failed(record, fail_on_formed=True)  # ... unless the protocol says otherwise


def test_wrapping_across_the_boundary(zif4):
    c, n, shift = _cn_bond(zif4, crossing=True)
    assert np.any(shift != 0)
    rng = np.random.default_rng(3)
    positions, cells = _frames(zif4, 4)
    # frame 1: everything translated and wrapped back; frame 2: random atoms moved by whole cell vectors
    moved = zif4.copy()
    moved.translate(moved.cell.cartesian_positions([0.37, 0.51, 0.29]))
    moved.wrap()
    positions[1] = moved.positions
    positions[2] += rng.integers(-2, 3, (len(zif4), 3)) @ zif4.cell.array
    # frame 3: the bond across the boundary pulled apart (the nitrogen's image is on the other side)
    partner = zif4.positions[n] + shift @ zif4.cell.array
    direction = (zif4.positions[c] - partner) / np.linalg.norm(zif4.positions[c] - partner)
    positions[3, c] += 1.0 * direction
    record = bond_changes(zif4, positions, cells)
    assert record['n_broken'][:3] == [0, 0, 0] and record['n_formed'][:3] == [0, 0, 0]
    assert record['summary']['first_change_frame'] == 3
    assert [min(c, n), max(c, n)] in record['frames'][0]['broken']


def test_changing_cell_npt(zif4):
    positions, cells = _frames(zif4, 3)
    for frame, scale in enumerate([1.0, 1.03, 0.97]):
        strain = np.eye(3) * scale
        strain[0, 1] = 0.02 * frame  # a little shear too
        positions[frame] = zif4.positions @ strain
        cells[frame] = zif4.cell.array @ strain
    record = bond_changes(zif4, positions, cells)
    assert record['summary']['intact']
    # the same positions measured in the reference cell would be a disaster: the cell is really used
    assert not bond_changes(zif4, positions * 1.3, cells)['summary']['intact']


def test_molecule_without_cell():
    ethane = molecule('C2H6')
    positions = np.repeat(ethane.positions[None], 2, axis=0)
    h = [k for k, s in enumerate(ethane.get_chemical_symbols()) if s == 'H'][:2]
    positions[1, h[1]] = positions[1, h[0]] + [0.5, 0.0, 0.0]  # two hydrogens on top of each other
    record = bond_changes(ethane, positions)
    assert record['n_reference_bonds'] == 7
    assert [min(h), max(h)] in record['frames'][0]['formed']
    assert record['summary']['first_formed_frame'] == 1 and record['n_formed'] == [0, 1]


def test_slab_periodic_in_two_directions():
    ethane = molecule('C2H6')
    ethane.cell = [[6.0, 0.0, 0.0], [0.0, 6.0, 0.0], [0.0, 0.0, 0.0]]  # no cell vector along z
    ethane.pbc = [True, True, False]
    ethane.positions += [0.2, 3.0, 7.0]  # straddles x = 0 once wrapped, far along the open z axis
    wrapped = ethane.copy()
    wrapped.wrap()
    assert np.ptp(wrapped.positions[:, 0]) > 3.0  # the molecule really is split across the boundary
    positions = np.stack([ethane.positions, wrapped.positions, wrapped.positions])
    carbon = [k for k, s in enumerate(ethane.get_chemical_symbols()) if s == 'C']
    positions[2, carbon[0], 2] += 1.5  # pull one carbon out along the open axis
    record = bond_changes(ethane, positions, np.repeat(ethane.cell.array[None], 3, axis=0))
    assert record['n_broken'][:2] == [0, 0] and record['n_formed'][:2] == [0, 0]
    assert [min(carbon), max(carbon)] in record['frames'][0]['broken']


def test_metal_ligand_bonds_are_not_recorded(zif4):
    positions, cells = _frames(zif4, 2)
    zinc = int(np.flatnonzero(zif4.numbers == 30)[0])
    positions[1, zinc] += [2.0, 0.0, 0.0]  # Zn–N bonds break and reform in a melt by design
    assert bond_changes(zif4, positions, cells)['summary']['intact']


def test_bad_inputs_are_explained(zif4):
    positions, cells = _frames(zif4, 2)
    with pytest.raises(ValueError, match='positions must have shape'):
        bond_changes(zif4, positions[:, :10], cells)
    with pytest.raises(ValueError, match='cells must have shape'):
        bond_changes(zif4, positions, cells[:1].repeat(3, axis=0))
    positions[1, 5, 0] = np.nan
    with pytest.raises(ValueError, match='frame 1 holds non-finite'):
        bond_changes(zif4, positions, cells)
    with pytest.raises(ValueError, match='hysteresis'):
        bond_changes(zif4, positions[:1], cells[:1], tol_break=0.1)


@pytest.mark.parametrize('periodic_z', [True, False])
def test_close_pairs_agree_with_ase_in_triclinic_cells(periodic_z):
    rng = np.random.default_rng(11)
    cell = np.diag([9.0, 10.0, 11.0]) + rng.normal(0.0, 2.0, (3, 3))
    positions = rng.uniform(-5.0, 20.0, (500, 3))
    cutoffs = rng.uniform(0.5, 1.0, 500)
    pbc = np.array([True, True, periodic_z])
    ours = set(zip(*(x.tolist() for x in _close_pairs(positions, cell, pbc, cutoffs))))
    ase = set(zip(*(x.tolist() for x in _close_pairs_ase(positions, cell, pbc, cutoffs))))
    assert len(ours) > 100 and ours == ase


def test_scale_20k_atoms(zif4):
    big = zif4.repeat((4, 4, 4))  # 17,408 atoms
    rng = np.random.default_rng(5)
    positions = big.positions[None] + rng.normal(0.0, 0.03, (3, len(big), 3))
    c, n, _ = _cn_bond(big, crossing=False)
    positions[2, c] += 1.2 * (big.positions[c] - big.positions[n]) / np.linalg.norm(big.positions[c] - big.positions[n])
    record = bond_changes(big, positions, None, list_frames=False)
    assert record['n_reference_bonds'] == 64 * 8 * len(_linkers(zif4))
    assert record['n_broken'][:2] == [0, 0] and record['summary']['first_broken_frame'] == 2
    assert all(c in b['atoms'] for b in record['broken_bonds'])
    assert record['frames'] == []


def test_record_is_json_serialisable(zif4):
    import json

    positions, cells = _frames(zif4, 2)
    positions[1, 0] += 3.0
    record = bond_changes(zif4, positions, cells)
    assert json.loads(json.dumps(record)) == record
