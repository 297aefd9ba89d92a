"""``extract.mantle_depth: auto`` in the campaign: the cycle's model chooses the depth, the scan cuts with it."""

from aiida import orm

from tests.workchains.test_campaign import campaign, explored, finished, trajectory, water_box, water_inputs

__all__ = ['water_inputs']  # the fixture, imported for the tests below


def _scanned(process, water_inputs):
    process.ctx.model, process.ctx.training = water_inputs['model'], water_inputs['training']
    process.ctx.cycle_roles = {'label': finished(), 'train': finished()}
    assert process.fit_and_evaluate() is None
    process.ctx.cycle, process.ctx.cycle_roles = 1, {}
    frames = [water_box(shift=0.9, seed=5), water_box(seed=6)]  # the first is squeezed: unknown atoms
    explored(process, [finished({'trajectory': trajectory(frames)})], [{'target': 'water', 'walk': 0}])
    assert process.scan() is None and process.inspect_scan() is None
    return process.ctx.cycle_roles['scan']


def test_auto_depth_is_chosen_by_the_cycle_model_and_is_an_input_of_the_scan(mofal_codes, water_inputs):
    extract = {'mantle_depth': 'auto', 'mantle_force_threshold': 10.0, 'mantle_depths': [0, 1]}
    process = campaign(mofal_codes, {'density': {'settings': {'max_components': 2}}, 'extract': extract})
    assert process.ctx.settings['extract']['mantle_depth'] == 'auto'
    scan = _scanned(process, water_inputs)
    choice = scan.base.links.get_incoming().get_node_by_label('mantle')
    assert choice['chosen_depth'] == 0 and choice['depths'] == [0, 1] and choice['cycle'] == 1
    chooser = process.ctx.cycle_roles['mantle']
    assert chooser.process_label == 'choose_mantle_depth' and choice.creator.uuid == chooser.uuid
    assert chooser.base.links.get_incoming().get_node_by_label('model').uuid == water_inputs['model'].uuid
    assert 'mantle_depths' not in process.ctx.extract_settings.get_dict()


def test_an_integer_depth_runs_no_force_matching(mofal_codes, water_inputs):
    process = campaign(mofal_codes, {'density': {'settings': {'max_components': 2}}})
    scan = _scanned(process, water_inputs)
    assert 'mantle' not in scan.base.links.get_incoming().all_link_labels() and 'mantle' not in process.ctx.cycle_roles
    settings = process.ctx.extract_settings.get_dict()
    assert settings['mantle_depth'] == 1 and not {'mantle_force_threshold', 'mantle_samples'} & set(settings)
    assert isinstance(process.ctx.extract_settings, orm.Dict)
