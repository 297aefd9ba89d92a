"""The campaign's calcfunctions give the same answers on both routes of a cycle's MACE inference.

Real MACE (a tiny random H/O model) on water. The small-system route computes features here
(``scan_and_extract``, ``fit_density_model``); the large-system route takes them from a ``mofal.mace.evaluate``
job's ``scan`` arrays (``clusters_from_scan``, ``fit_density_from_features``). That the job's arrays equal the
features and scores computed here is tested in ``test_mace_evaluate.py``; here they are made here, in the job's
format, so no job runs. The jobs run for real in the campaign end to end (``tests/engines/test_campaign.py``).
"""

import mace  # noqa: F401  (before e3nn: the tiny model fixture imports e3nn)
import numpy as np
import pytest
from aiida import orm

from aiida_mofal.calculations.campaign import (
    clusters_from_scan,
    fit_density_from_features,
    scan_and_extract,
    scan_frames,
)
from aiida_mofal.calculations.density import fit_density_model
from aiida_mofal.calculations.mace_evaluate import array_data
from aiida_mofal.data import MaceModelData
from aiida_mofal.data.density_model import feature_extractor_for
from tests.workchains.test_campaign import labelled, trajectory, water_box

EXTRACT = {'mantle_depth': 1, 'merge_depth': 0, 'vacuum': 4.0, 'max_clusters': 3, 'cycle': 1}


def job_arrays(model, frames, density=None) -> orm.ArrayData:
    """What a ``mofal.mace.evaluate`` scan job returns (its ``scan.npz``), computed here."""
    atoms = frames.get_atoms()
    arrays = {
        'structure_index': np.concatenate([np.full(len(a), i) for i, a in enumerate(atoms)]),
        'numbers': np.concatenate([a.numbers for a in atoms]),
    }
    if density is None:
        arrays['features'] = np.concatenate(feature_extractor_for(model).features_many(atoms))
    else:
        scores = density.score(atoms, model)
        arrays['uncertainty'] = np.concatenate([score['uncertainty'] for score in scores])
        arrays['unknown'] = np.concatenate([score['unknown'] for score in scores])
    return array_data(arrays)


def test_scan_and_density_fit_give_the_same_answers_on_both_routes(aiida_profile, tiny_mace_model_file):
    model = MaceModelData(tiny_mace_model_file, trusted=True).store()
    training = labelled([water_box(seed=i) for i in range(4)]).store()
    settings = orm.Dict({'max_components': 2})

    local_density = fit_density_model(model, training, settings)
    features = job_arrays(model, training)
    job_density = fit_density_from_features(model, features, settings)
    assert job_density.thresholds.keys() == local_density.thresholds.keys() == {'H', 'O'}
    for symbol, threshold in local_density.thresholds.items():
        assert job_density.thresholds[symbol] == pytest.approx(threshold, rel=1e-6)
    assert job_density.base.attributes.get('model_uuid') == model.uuid

    walks = orm.Dict({'walk_0': {'target': 'water', 'walk': 0}, 'walk_1': {'target': 'water', 'walk': 1}})
    first = trajectory([water_box(shift=0.9, seed=7), water_box(seed=8)])  # squeezed: unknown atoms
    second = trajectory([water_box(seed=9), water_box(shift=1.1, seed=10)])
    here = scan_and_extract(model, local_density, orm.Dict(EXTRACT), walks, walk_0=first, walk_1=second)
    frames = scan_frames(walks, walk_0=first, walk_1=second)
    scan = job_arrays(model, frames, local_density)
    there = clusters_from_scan(frames, scan, orm.Dict(EXTRACT))

    summary = here['scan'].get_dict()
    assert summary == there['scan'].get_dict()
    assert summary['frames'] == 4 and summary['unknown_atoms'] > 0 and summary['clusters'] > 0
    assert [w['walk'] for w in summary['per_walk']] == [0, 1]
    ours, theirs = here['clusters'].get_atoms(), there['clusters'].get_atoms()
    assert [(a.info['walk'], a.info['frame'], a.info['seed_atom']) for a in ours] == [
        (a.info['walk'], a.info['frame'], a.info['seed_atom']) for a in theirs
    ]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.positions, b.positions)
        assert a.info['uncertainty'] == pytest.approx(b.info['uncertainty'], rel=1e-6)
