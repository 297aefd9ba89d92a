"""CBAD acceptance: hand-made frames with known answers, the plain SI loop, occupancy round trips, refusals."""

import ase.io
import numpy as np
import pytest

from aiida_mofal.selection.cbad import (
    DEFAULT_RESOLUTIONS,
    CbadError,
    CbadOccupancy,
    CbadTopology,
    check_resolutions,
    descriptor_bins,
    scaled_resolutions,
)
from tests.selection.conftest import peroxide, perturbed
from tests.selection.plain_cbad import plain_select

COARSE = {'cell_length': 1.0, 'cell_angle': 5.0, 'bond': 0.5, 'angle': 30.0, 'dihedral': 15.0}


def _stack(frames):
    return np.stack([a.positions for a in frames]), np.stack([a.cell.array for a in frames])


def test_identical_frames_give_only_the_first(zif8, zif8_topology):
    positions, cells = perturbed(zif8, 1, seed=3)
    repeated = np.repeat(positions, 5, axis=0), np.repeat(cells, 5, axis=0)
    assert CbadOccupancy().select(zif8_topology, *repeated).tolist() == [0]


def test_a_frame_new_in_one_dihedral_bin_is_accepted():
    # the same bonds and angles throughout; only the H–O–O–H dihedral moves (bins of 15°: 110 and 112 share bin 7)
    frames = [peroxide(110.0), peroxide(112.0), peroxide(-100.0), peroxide(113.0), peroxide(-95.0)]
    topology = CbadTopology.from_reference(frames[0])
    bins = descriptor_bins(topology, *_stack(frames), COARSE)
    assert (bins[:, :-1] == bins[0, :-1]).all()  # everything but the dihedral is in the same bin
    assert bins[:, -1].tolist() == [7, 7, -7, 7, -7]
    occupancy = CbadOccupancy(COARSE)
    assert occupancy.select(topology, *_stack(frames)).tolist() == [0, 2]
    name = topology.type_names[-1]
    assert name.startswith('dihedral:') and occupancy.bins(name) == {7, -7}
    # the text's rule, not the SI pseudocode's: frame 2 has one new bin out of eleven and is accepted
    assert len(occupancy) == len(topology.types) + 1


def test_bins_are_floors_so_negative_values_are_not_merged_with_positive():
    topology = CbadTopology.from_reference(peroxide(5.0))
    bins = descriptor_bins(topology, *_stack([peroxide(5.0), peroxide(-5.0)]), COARSE)
    assert bins[:, -1].tolist() == [0, -1]  # int() would put both in bin 0


def test_selection_equals_the_plain_loop_on_random_frames(zif8, zif8_topology):
    positions, cells = perturbed(zif8, 40, seed=5, sigma=0.04, strain=0.004)
    positions[20:] += np.random.default_rng(6).normal(0, 0.04, positions[20:].shape)  # a hotter second half
    expected, occupied = plain_select(zif8_topology, positions, cells, DEFAULT_RESOLUTIONS)
    occupancy = CbadOccupancy()
    assert 0 < len(expected) < 40
    assert occupancy.select(zif8_topology, positions, cells, chunk=16).tolist() == expected
    names = zif8_topology.type_names
    assert {names[t]: bins for t, bins in occupied.items() if bins} == {
        name: set(occupancy.bins(name)) for name in names if occupancy.bins(name)
    }
    # starting from the occupancy of a "training set" (the first ten frames)
    seed = CbadOccupancy()
    seed.add(zif8_topology, positions[:10], cells[:10])
    start = {t: set(seed.bins(name)) for t, name in enumerate(names)}
    again, _ = plain_select(zif8_topology, positions[10:], cells[10:], DEFAULT_RESOLUTIONS, start)
    assert seed.select(zif8_topology, positions[10:], cells[10:]).tolist() == again


def test_chunks_and_atoms_input_do_not_change_the_answer(zif8, zif8_topology, tmp_path):
    positions, cells = perturbed(zif8, 12, seed=8)
    reference = CbadOccupancy().select(zif8_topology, positions, cells, chunk=64).tolist()
    for chunk in (1, 5):
        assert CbadOccupancy().select(zif8_topology, positions, cells, chunk=chunk).tolist() == reference
    frames = []
    for p, c in zip(positions, cells):
        atoms = zif8.copy()
        atoms.cell, atoms.positions = c, p
        atoms.wrap()
        frames.append(atoms)
    ase.io.write(tmp_path / 'frames.extxyz', frames)
    assert (
        CbadOccupancy().select(zif8_topology, ase.io.iread(tmp_path / 'frames.extxyz'), chunk=5).tolist() == reference
    )


def test_coarser_resolutions_never_select_more(zif8, zif8_topology):
    positions, cells = perturbed(zif8, 30, seed=9, sigma=0.06)
    previous = None
    for factor in (0.5, 1, 2, 4, 8):  # nested grids: every coarse bin is a union of fine bins
        selected = set(
            CbadOccupancy(scaled_resolutions(DEFAULT_RESOLUTIONS, factor)).select(zif8_topology, positions, cells)
        )
        if previous is not None:
            assert selected <= previous
        previous = selected
    assert len(previous) < 30


def test_best_frame_is_the_one_adding_most_pairs():
    topology = CbadTopology.from_reference(peroxide(110.0))
    start = CbadOccupancy(COARSE)
    start.add(topology, [peroxide(110.0)])
    stretched = peroxide(-100.0, oo=2.1)  # new dihedral bin and new O–O bond bin
    run = [peroxide(111.0), peroxide(-100.0), stretched, peroxide(-101.0)]
    best = start.best_frame(topology, run, update=False)
    assert (best.index, best.n_new) == (2, 2)
    assert start.best_frame(topology, run).index == 2  # the same answer, and now its pairs are occupied
    assert start.best_frame(topology, run).index is None  # nothing left to add


def test_occupancy_round_trip_and_update_flag(zif8, zif8_topology):
    positions, cells = perturbed(zif8, 6, seed=10)
    occupancy = CbadOccupancy({'dihedral': 10.0})
    untouched = occupancy.select(zif8_topology, positions, cells, update=False)
    assert len(occupancy) == 0 and len(untouched)
    occupancy.select(zif8_topology, positions, cells)
    restored = CbadOccupancy.from_dict(occupancy.to_dict())
    assert restored.to_dict() == occupancy.to_dict() and len(restored) == len(occupancy)
    assert restored.resolutions['dihedral'] == 10.0
    assert sum(restored.family_counts().values()) == len(restored)
    assert restored.select(zif8_topology, positions, cells).tolist() == []
    with pytest.raises(CbadError, match='cannot be compared'):
        restored.check_compatible(DEFAULT_RESOLUTIONS)


def test_frames_that_are_not_the_reference_are_refused(zif8, zif8_topology):
    shorter = zif8[:-1]
    with pytest.raises(CbadError, match='frame 0 has 275 atoms but the reference has 276'):
        CbadOccupancy().select(zif8_topology, [shorter])
    swapped = zif8.copy()
    numbers = swapped.numbers.copy()
    first_h, first_c = int(np.flatnonzero(numbers == 1)[0]), int(np.flatnonzero(numbers == 6)[0])
    numbers[[first_h, first_c]] = numbers[[first_c, first_h]]
    swapped.numbers = numbers
    with pytest.raises(CbadError, match=f'frame 1: atom {min(first_h, first_c)} is .* same order'):
        CbadOccupancy().select(zif8_topology, [zif8, swapped])
    positions, cells = perturbed(zif8, 2)
    with pytest.raises(CbadError, match='do not match the reference'):
        CbadOccupancy().select(zif8_topology, positions[:, :-1], cells)
    flat = zif8.copy()
    flat.pbc = [True, True, False]
    with pytest.raises(CbadError, match='not periodic in 3D'):
        CbadOccupancy().select(zif8_topology, [flat])


@pytest.mark.parametrize(
    ('resolutions', 'message'),
    [
        ({'bond': 0.0}, 'must be a finite number > 0'),
        ({'angle': -1.0}, 'must be a finite number > 0'),
        ({'dihedral': float('nan')}, 'must be a finite number > 0'),
        ({'bond': 'wide'}, 'must be a number'),
        ({'dihedrals': 10.0}, "unknown CBAD descriptor family 'dihedrals'.*Did you mean 'dihedral'"),
    ],
)
def test_bad_resolutions_are_refused(resolutions, message):
    with pytest.raises(CbadError, match=message):
        check_resolutions(resolutions)
    with pytest.raises(CbadError, match=message):
        CbadOccupancy(resolutions)
