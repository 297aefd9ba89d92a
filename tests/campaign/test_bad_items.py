"""Issue 18, class 5 (one bad item never ends a campaign): a frame that cannot be cut or scored is skipped and listed.

The dangling-H frame of the probe is covered in ``test_scan.py``; here any other failure of one frame (an
unexpected exception inside extraction, a cluster that is no valid configuration, a frame the model cannot score)
costs that frame only, and the summary says which frame and why.
"""

import numpy as np

from aiida_mofal.calculations.campaign import _score_each
from aiida_mofal.campaign import scan
from tests.structure_files import read_structure

SETTINGS = {'mantle_depth': 1, 'merge_depth': 0, 'vacuum': 6.0, 'max_clusters': 5}


def _flag(atoms, index):
    unknown = np.zeros(len(atoms), dtype=bool)
    unknown[index] = True
    return {'uncertainty': unknown.astype(float), 'unknown': unknown}


def test_any_failure_of_one_frame_is_skipped_with_its_reason(monkeypatch):
    from aiida_mofal.clusters import extract

    frame = read_structure('ZnIm2-sod_Lewis2009.cif')
    zinc = int(np.flatnonzero(frame.numbers == 30)[0])
    real = extract.extract_clusters

    def flaky(atoms, flagged, **kwargs):
        if atoms.info.get('poison'):
            raise IndexError('index 7 is out of bounds')  # not a ValueError: the old code let it end the campaign
        return real(atoms, flagged, **kwargs)

    monkeypatch.setattr(extract, 'extract_clusters', flaky)
    poisoned = frame.copy()
    poisoned.info['poison'] = True
    walks = [{'target': 'zif', 'walk': 0}]
    summary, clusters = scan.scan_walks(walks, [[frame, poisoned]], [[_flag(frame, zinc), _flag(frame, zinc)]],
                                        SETTINGS, cycle=1)  # fmt: skip
    assert len(clusters) == 1 and clusters[0].info['frame'] == 0
    assert summary['skipped_frames'] == [
        {'target': 'zif', 'walk': 0, 'frame': 1, 'reason': 'IndexError: index 7 is out of bounds'}
    ]
    assert summary['unknown_atoms'] == 2  # the skipped frame's unknown atom still counts


def test_a_frame_that_cannot_be_scored_costs_only_itself():
    class Density:
        def score(self, frames, model):
            if any(not np.isfinite(atoms.positions).all() for atoms in frames):
                raise ValueError('positions contain NaN')
            return [{'uncertainty': np.ones(len(a)), 'unknown': np.zeros(len(a), dtype=bool)} for a in frames]

    frame = read_structure('ZnIm2-sod_Lewis2009.cif')
    blown = frame.copy()
    blown.positions[3] = np.nan
    scores, unscored = _score_each(Density(), None, [frame, blown, frame])
    assert len(scores) == 3 and unscored == [(1, 'ValueError: positions contain NaN')]
    assert scores[0]['uncertainty'].sum() == len(frame) and not scores[1]['unknown'].any()
