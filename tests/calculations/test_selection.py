"""`select_cbad`: CBAD selection as a calcfunction, its provenance, continuation from its occupancy, refusals."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from aiida_mofal.calculations.selection import SOURCE_FRAME_KEY, SOURCE_TRAJECTORY_KEY, cbad_settings, select_cbad
from aiida_mofal.data import DatasetData
from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.selection.cbad import CbadError
from tests.selection.conftest import peroxide

RESOLUTIONS = {'dihedral': 15.0, 'bond': 0.5, 'angle': 30.0}


def _trajectory(dihedrals):
    frames = [peroxide(d) for d in dihedrals]
    arrays = {
        'positions': np.stack([a.positions for a in frames]),
        'cells': np.stack([a.cell.array for a in frames]),
        'steps': np.arange(len(frames)) * 10,
    }
    return MdTrajectoryData(arrays, numbers=frames[0].numbers).store()


@pytest.fixture(scope='module')
def inputs(aiida_profile):
    return {
        'reference': orm.StructureData(ase=peroxide(110.0)).store(),
        'run_000': _trajectory([110.0, 112.0, -100.0, 113.0]),
        'run_001': _trajectory([-95.0, 40.0, 41.0, 170.0]),
    }


@pytest.fixture(scope='module')
def selection(inputs):
    settings = orm.Dict({'resolutions': RESOLUTIONS})
    results, node = select_cbad.run_get_node(settings=settings, **inputs)
    return settings, results, node


def test_selection_is_stored_with_its_sources(inputs, selection):
    settings, results, node = selection
    assert node.is_finished_ok
    dataset = results['dataset']
    assert isinstance(dataset, DatasetData) and dataset.labels == []
    sources = [
        (a.info[SOURCE_TRAJECTORY_KEY], a.info[SOURCE_FRAME_KEY], a.info['md_step']) for a in dataset.get_atoms()
    ]
    first, second = inputs['run_000'].uuid, inputs['run_001'].uuid
    assert sources == [(first, 0, 0), (first, 2, 20), (second, 1, 10), (second, 3, 30)]
    np.testing.assert_allclose(dataset.get_atoms()[2].positions, inputs['run_001'].get_array('positions')[1])
    # provenance: every input is linked, and the outputs hang from this calcfunction
    incoming = {link.link_label: link.node.uuid for link in node.base.links.get_incoming(link_type=LinkType.INPUT_CALC)}
    assert incoming == {
        'reference': inputs['reference'].uuid,
        'settings': settings.uuid,
        'run_000': first,
        'run_001': second,
    }
    outgoing = {link.link_label for link in node.base.links.get_outgoing(link_type=LinkType.CREATE)}
    assert outgoing == {'dataset', 'occupancy', 'report'}
    report = results['report'].get_dict()
    assert report['n_frames'] == 8 and report['n_selected'] == 4
    assert report['selected'][2] == {'trajectory': second, 'frame': 1}
    assert [run['n_selected'] for run in report['trajectories']] == [2, 2]


def test_continuing_from_the_occupancy_finds_nothing_twice(inputs, selection):
    settings, first, _ = selection
    # the occupancy of the first selection plus a training set with one more dihedral bin (-50° is bin -4)
    training = DatasetData([peroxide(-50.0)]).store()
    again = select_cbad(settings=settings, occupancy=first['occupancy'], training_set=training, **inputs)
    assert again['dataset'].count == 0
    pairs = again['report']['occupied_pairs']
    assert pairs['start'] == pairs['end'] == first['report']['occupied_pairs']['end'] + 1
    dihedral = next(e for e in again['occupancy']['occupied'] if e['type'].startswith('dihedral:'))
    assert dihedral['bins'] == [-7, -4, 2, 7, 11]


def test_best_per_trajectory_keeps_at_most_one_frame_per_run(inputs):
    settings = orm.Dict({'resolutions': RESOLUTIONS, 'mode': 'best_per_trajectory'})
    results = select_cbad(settings=settings, **inputs)
    records = results['report']['selected']
    assert [r['trajectory'] for r in records] == [inputs['run_000'].uuid, inputs['run_001'].uuid]
    # run_000: frame 0 brings every pair; run_001 then: -95 is bin -7 (new), 40 bin 2 (new), 170 bin 11: one each,
    # the earliest wins
    assert [(r['frame'], r['n_new']) for r in records] == [(0, 10), (0, 1)]


def test_bad_settings_are_refused(inputs):
    with pytest.raises(CbadError, match="Did you mean 'resolutions'"):
        cbad_settings({'resolution': RESOLUTIONS})
    with pytest.raises(CbadError, match='mode'):
        cbad_settings({'mode': 'all'})
    with pytest.raises(CbadError, match='finite number > 0'):
        cbad_settings({'resolutions': {'bond': -1}})
    assert cbad_settings({})['mode'] == 'sequential'
    # a trajectory whose atoms are not in the reference's order fails inside, with the reason
    reordered = orm.StructureData(ase=peroxide()[[1, 0, 2, 3]]).store()
    with pytest.raises(CbadError, match='same order'):
        select_cbad(reference=reordered, settings=orm.Dict({}), run_000=inputs['run_000'])


def test_intact_only_leaves_out_every_frame_from_the_first_broken_bond_on(aiida_profile):
    broken = peroxide(112.0, oh=2.0)  # an O-H bond stretched past its break length (1.46 Å)
    frames = [peroxide(110.0), peroxide(112.0), broken, peroxide(-100.0)]  # the last one is new, but after the break
    arrays = {'positions': np.stack([a.positions for a in frames]), 'cells': np.stack([a.cell.array for a in frames])}
    run = MdTrajectoryData(arrays, numbers=frames[0].numbers).store()
    reference = orm.StructureData(ase=peroxide(110.0)).store()
    everything = select_cbad(reference=reference, settings=orm.Dict({'resolutions': RESOLUTIONS}), run_000=run)
    assert [r['frame'] for r in everything['report']['selected']] == [0, 2, 3]  # CBAD alone loves the broken frame
    settings = orm.Dict({'resolutions': RESOLUTIONS, 'intact_only': True})
    report = select_cbad(reference=reference, settings=settings, run_000=run)['report'].get_dict()
    assert [r['frame'] for r in report['selected']] == [0] and report['intact_only'] is True
    assert (report['n_frames'], report['n_intact'], report['trajectories'][0]['n_intact']) == (4, 2, 2)
    best = {'resolutions': RESOLUTIONS, 'mode': 'best_per_trajectory', 'intact_only': True}
    training = DatasetData([peroxide(110.0)])
    report = select_cbad(reference=reference, settings=orm.Dict(best), training_set=training, run_000=run)['report']
    assert report['n_selected'] == 0  # frame 1 adds nothing; frames 2 and 3 (new bins) are past the break
    with pytest.raises(CbadError, match='intact_only must be true or false'):
        cbad_settings({'intact_only': 'yes'})
