"""The scan step, pure: scores of MD frames in, ranked and capped clusters and a summary out."""

import numpy as np
import pytest

from aiida_mofal.campaign.scan import scan_walks, split_scores
from tests.structure_files import read_structure

SETTINGS = {'mantle_depth': 1, 'merge_depth': 0, 'vacuum': 6.0, 'max_clusters': 3}


def _scores(atoms, flagged: dict[int, float]):
    uncertainty = np.zeros(len(atoms))
    unknown = np.zeros(len(atoms), dtype=bool)
    for index, value in flagged.items():
        uncertainty[index], unknown[index] = value, True
    return {'uncertainty': uncertainty, 'unknown': unknown}


def test_clusters_of_all_walks_are_ranked_together_and_say_where_they_come_from():
    frame = read_structure('ZnIm2-sod_Lewis2009.cif')
    zinc = np.flatnonzero(frame.numbers == 30)
    walks = [{'target': 'znim2', 'walk': 0}, {'target': 'znim2', 'walk': 1}]
    frames = [[frame, frame.copy()], [frame.copy()]]
    scores = [
        [_scores(frame, {int(zinc[0]): 2.0}), _scores(frame, {})],
        [_scores(frame, {int(zinc[1]): 9.0, int(zinc[2]): 5.0, int(zinc[3]): 1.0})],
    ]
    summary, clusters = scan_walks(walks, frames, scores, SETTINGS, cycle=4)
    assert summary['frames'] == 3 and summary['atoms'] == 3 * len(frame) and summary['unknown_atoms'] == 4
    assert summary['unknown_fraction'] == pytest.approx(4 / (3 * len(frame)))
    assert summary['candidate_clusters'] == 4 and summary['clusters'] == 3
    assert summary['per_walk'] == [
        {'target': 'znim2', 'walk': 0, 'frames': 2, 'unknown_atoms': 1},
        {'target': 'znim2', 'walk': 1, 'frames': 1, 'unknown_atoms': 3},
    ]
    assert [c.info['uncertainty'] for c in clusters] == [9.0, 5.0, 2.0]  # the cap drops the least uncertain
    assert [(c.info['walk'], c.info['frame'], c.info['seed_atom']) for c in clusters] == [
        (1, 0, int(zinc[1])),
        (1, 0, int(zinc[2])),
        (0, 0, int(zinc[0])),
    ]
    assert all(c.info['cycle'] == 4 and c.info['target'] == 'znim2' and c.info['charge'] == 2 for c in clusters)


def test_nothing_unknown_gives_no_cluster():
    frame = read_structure('ZnIm2-sod_Lewis2009.cif')
    summary, clusters = scan_walks([{'target': 't', 'walk': 0}], [[frame]], [[_scores(frame, {})]], SETTINGS, 1)
    assert clusters == [] and summary['unknown_fraction'] == 0.0 and summary['clusters'] == 0


def test_flat_scan_arrays_are_split_per_frame_and_checked():
    index = np.array([0, 0, 1, 1, 1])
    scores = split_scores(index, np.arange(5.0), np.array([0, 1, 0, 0, 1], dtype=bool), [2, 3])
    assert scores[1]['uncertainty'].tolist() == [2.0, 3.0, 4.0] and scores[0]['unknown'].tolist() == [False, True]
    with pytest.raises(ValueError, match='holds 5 atoms but the frames have 6'):
        split_scores(index, np.arange(5.0), np.zeros(5, bool), [3, 3])
    with pytest.raises(ValueError, match='holds 2 atoms of frame 0, which has 1'):
        split_scores(index, np.arange(5.0), np.zeros(5, bool), [1, 4])


def test_a_frame_whose_chemistry_broke_is_skipped_and_reported():
    frame = read_structure('ZnIm2-sod_Lewis2009.cif')
    broken = frame.copy()
    hydrogen = int(np.flatnonzero(frame.numbers == 1)[0])
    neighbour = int(np.argsort(frame.get_distances(hydrogen, range(len(frame)), mic=True))[1])
    bond = frame.get_distance(neighbour, hydrogen, mic=True, vector=True)
    broken.positions[hydrogen] += 1.2 * bond / np.linalg.norm(bond)  # the H leaves its carbon
    zinc = int(np.flatnonzero(frame.numbers == 30)[0])
    scores = [[_scores(broken, {hydrogen: 3.0}), _scores(frame, {zinc: 1.0})]]
    summary, clusters = scan_walks([{'target': 't', 'walk': 0}], [[broken, frame]], scores, SETTINGS, 1)
    (skipped,) = summary['skipped_frames']
    assert skipped['frame'] == 0 and 'hydrogen atoms without exactly one covalent bond' in skipped['reason']
    assert summary['unknown_atoms'] == 2 and [c.info['frame'] for c in clusters] == [1]


def test_reference_topology_keeps_the_clusters_of_the_target():
    from tests.structures.test_blocks import _compressed_linker_frame

    reference, frame, carboxylate = _compressed_linker_frame()
    walks, frames = [{'target': 'uio', 'walk': 0}], [[frame]]
    scores = [[_scores(frame, {carboxylate: 3.0})]]
    _, (recomputed,) = scan_walks(walks, frames, scores, SETTINGS, 1)
    _, (mapped,) = scan_walks(walks, frames, scores, SETTINGS, 1, references={'uio': reference})
    assert len(recomputed) == 250 and len(mapped) == 186
