"""The end of the temperature campaign: the paper's final random configurations, and evaluation as a job.

As in ``test_temperature.py`` the steps run on an instantiated work chain with stored stand-ins for its MD and
label children; the calcfunctions (``random_frames``, records, evaluation) and, in the last test, the
``mofal.mace.evaluate`` job on ``python-mace@localhost`` run for real, on boxes of two waters and a tiny model.
"""

import mace  # noqa: F401  (before e3nn: the tiny model fixture imports e3nn)
import pytest
from aiida import engine, orm

from aiida_mofal.calculations.temperature import intact_frame_count, ramp_test_set, random_frames
from aiida_mofal.workchains.temperature import TemperatureCampaignWorkChain
from tests.workchains import test_temperature
from tests.workchains.test_campaign import capture_submissions, finished, labelled, trajectory, water_box
from tests.workchains.test_temperature import temperature_campaign

water = test_temperature.water  # the fixture: a tiny random MACE model and two labelled water boxes


def test_random_frames_draws_without_repeats_and_never_the_start(aiida_profile):
    ramp = trajectory([water_box(seed=i) for i in range(8)]).store()
    outputs = random_frames(ramp, orm.Dict({'count': 4, 'seed': 1}))
    report = outputs['report'].get_dict()
    frames = outputs['dataset'].get_atoms()
    assert report['n_frames'] == 7 and report['n_selected'] == 4 and len(set(report['frames'])) == 4
    assert 0 not in report['frames'] and report['frames'] == sorted(report['frames'])
    assert [a.info['source_frame'] for a in frames] == report['frames']
    assert {a.info['campaign_set'] for a in frames} == {'random'} and frames[0].info['source_trajectory'] == ramp.uuid
    again = random_frames(ramp, orm.Dict({'count': 4, 'seed': 1}))['report'].get_dict()['frames']
    other = random_frames(ramp, orm.Dict({'count': 4, 'seed': 2}))['report'].get_dict()['frames']
    assert again == report['frames'] and other != report['frames']  # seeded
    everything = random_frames(ramp, orm.Dict({'count': 100, 'seed': 0}))['report'].get_dict()
    assert everything['n_selected'] == 7 and everything['frames'] == list(range(1, 8))  # fewer frames than asked


def test_random_and_test_frames_are_drawn_before_the_first_broken_bond_only(aiida_profile):
    frames = [water_box(seed=i) for i in range(6)]
    frames[4].positions[1] += [1.5, 0.0, 0.0]  # an O-H of the first water pulled apart from frame 4 on
    frames[5].positions[1] += [1.5, 0.0, 0.0]
    ramp = trajectory(frames).store()
    settings = {'count': 10, 'seed': 0, 'intact_only': True}
    assert intact_frame_count(ramp, orm.Dict(settings)) == 4
    report = random_frames(ramp, orm.Dict(settings))['report'].get_dict()
    assert report['frames'] == [1, 2, 3] and (report['n_frames'], report['n_intact']) == (5, 3)
    assert random_frames(ramp, orm.Dict({'count': 10, 'seed': 0}))['report']['frames'] == [1, 2, 3, 4, 5]
    test = ramp_test_set(ramp, orm.Dict({'frames': 5, 'intact_only': True})).get_atoms()
    assert [a.info['source_frame'] for a in test] == [1, 2, 3]


def test_the_paper_default_is_100_random_configurations(mofal_codes):
    process = temperature_campaign()  # demo protocol, the file's sizes
    assert process.ctx.settings['final'] == {'random': 100, 'steps': None, 'temperature_range': None}
    assert process.wants_random()
    assert not temperature_campaign({'final': {'random': 0}}).wants_random()


def test_a_final_ramp_too_short_for_its_random_frames_is_refused(mofal_codes):
    overrides = {'final': {'random': 5, 'steps': 80}}  # cbad_walk: a frame every 20 steps -> 4 frames
    with pytest.raises(ValueError, match=r'final: 5 random configurations from a ramp of 80 steps, which gives 4'):
        temperature_campaign(overrides)


def test_the_final_step_labels_random_ramp_frames_retrains_and_records(mofal_codes, water, monkeypatch):
    overrides = {'final': {'random': 2, 'steps': 60, 'temperature_range': [50.0, 900.0]}}
    process = temperature_campaign(overrides)
    process.ctx.model, process.ctx.training, process.ctx.step = water['model'], water['training'], 2
    process.ctx.e0s = orm.Dict({'H': -13.6, 'O': -432.0})
    submitted = capture_submissions(process, monkeypatch)
    process.run_final_ramp()
    (ramp,) = submitted
    (stage,) = ramp.md.settings.get_dict()['schedule']
    assert stage['temperature'] == [50.0, 900.0] and stage['steps'] == 60 and not ramp.md.walks
    assert ramp.metadata.call_link_label == 'final_ramp' and process.ctx.step == 3 and process.ctx.final
    process.ctx.md = finished({'trajectory': trajectory([water_box(shift=0.1 * i, seed=i) for i in range(4)])})
    assert process.pick_random() is None
    picked = process.ctx.selected.get_atoms()
    assert len(picked) == 2 and {a.info['campaign_set'] for a in picked} == {'random'}
    process.label()
    label = submitted[1]
    assert label.metadata.call_link_label == 'final_label'
    assert dict(label.isolated_atom_energies) == dict(process.ctx.e0s)
    process.ctx.step_label = finished({'dataset': labelled(picked)})
    assert process.merge() is None and process.ctx.training.count == 4
    process.ctx.roles.update(label=process.ctx.step_label, train=finished())
    assert process.evaluate() is None and process.record() is None  # no evaluate code: in this process
    row = process.outputs['steps']['step_3'].get_dict()
    assert row['final'] is True and row['temperature_k'] is None and row['accepted'] == 2 and row['frames_seen'] == 3
    assert row['training_configurations'] == 4 and row['occupied_per_family'] is None
    assert row['processes']['evaluation'] == row['evaluation'] and row['force_rmse_ev_per_a'] > 0


def test_the_final_ramp_defaults_to_the_test_ramps_low_end_up_to_the_last_steps_temperature(mofal_codes, monkeypatch):
    process = temperature_campaign({'final': {'random': 1}, 'test': {'temperature_range': [20.0, 1000.0]}})
    assert process.ctx.temperatures == [100.0, 200.0]
    submitted = capture_submissions(process, monkeypatch)
    process.ctx.step = 2  # after T_max
    process.run_final_ramp()
    process.ctx.step, process.ctx.final = 1, False  # a campaign stopped at step 1 (it accepted nothing)
    process.run_final_ramp()
    ramps = [builder.md.settings.get_dict()['schedule'][0]['temperature'] for builder in submitted]
    assert ramps == [[20.0, 200.0], [20.0, 100.0]]  # not the test ramp's 1000 K: the model has seen nothing hotter
    chosen = temperature_campaign({'final': {'random': 1, 'temperature_range': [50.0, 900.0]}})
    chosen.ctx.step = 2
    assert chosen.final_range() == (50.0, 900.0)  # a range given is used as it is


@pytest.mark.parametrize(
    ('md', 'why'),
    [
        ('blew up', 'exit status 310: walk(s) 0 still blew up after 3 halvings'),  # no trajectory
        ('partial', 'exit status 310: the temperature reached 3512 K'),  # frames before the blow-up: not used either
        ('empty', 'exit status 0: it gave no frames'),
    ],
)  # fmt: skip
def test_a_failed_final_ramp_ends_the_campaign_with_exit_0_and_the_last_steps_model(
    mofal_codes, water, monkeypatch, md, why
):
    process = temperature_campaign({'final': {'random': 2}})
    process.ctx.model, process.ctx.training, process.ctx.step = water['model'], water['training'], 2
    process.ctx.occupancy = orm.Dict({'bond': [[0, 1]]}).store()
    assert process.should_continue() is False  # T_max reached: the stop reason is set
    capture_submissions(process, monkeypatch)
    lines = []
    monkeypatch.setattr(process, 'report', lambda message, *args: lines.append(message % args if args else message))
    process.run_final_ramp()
    if md == 'blew up':
        md = finished(exit_status=310, message='walk(s) 0 still blew up after 3 halvings')
    elif md == 'partial':
        frames = trajectory([water_box(shift=0.1 * i, seed=i) for i in range(4)])
        md = finished({'trajectory': frames}, exit_status=310, message='the temperature reached 3512 K')
    elif md == 'empty':
        md = finished({'trajectory': trajectory([water_box()])})  # one frame: the start, nothing to draw
    process.ctx.md = md
    assert process.pick_random() is None  # not an exit code: the campaign goes on to its end
    assert not process.final_ramp_ok()
    exit_code = process.finalise()
    assert exit_code.status == 0
    expected = f'reached T_max = 200 K after 2 temperature step(s); the final ramp failed ({why}), so the model and'
    assert exit_code.message.startswith(expected) and exit_code.message.endswith('those of step 2')
    assert process.node.base.extras.get('stop_reason') == exit_code.message  # what `mofal status` prints
    assert process.outputs['model'].uuid == water['model'].uuid
    assert process.outputs['dataset'].uuid == water['training'].uuid and 'steps' not in process.outputs
    assert any(line.startswith(f'the final ramp failed ({why}): no random configurations') for line in lines)
    assert 'ERROR_FINAL_RAMP' not in TemperatureCampaignWorkChain.spec().exit_codes  # no exit code for it


def test_evaluation_runs_as_a_real_mace_evaluate_job_when_resources_name_a_code(mofal_codes, water, monkeypatch):
    overrides = {'resources': {'evaluate': {'code': 'python-mace@localhost', 'settings': {'max_atoms_per_batch': 64},
                                            'options': {'max_wallclock_seconds': 600}}}}  # fmt: skip
    process = temperature_campaign(overrides)
    assert process.inputs.evaluate_code.uuid == mofal_codes['python-mace'].uuid
    process.ctx.model, process.ctx.training = water['model'], water['training']
    process.ctx.selection = orm.Dict({'n_frames': 2, 'n_selected': 2, 'occupied_pairs': {'start': 0, 'end': 9},
                                      'occupied_per_family': {'bond': 4}})  # fmt: skip
    process.ctx.step_info, process.ctx.roles = {'runs': 0, 'labelled': 2}, {'train': finished()}
    submitted = capture_submissions(process, monkeypatch)
    process.evaluate()
    (builder,) = submitted
    assert builder.metadata.call_link_label == 'step_0_evaluate'
    assert builder.settings.get_dict() == {'max_atoms_per_batch': 64, 'mode': 'evaluate'}
    _, job = engine.run_get_node(builder)  # the job the campaign submits, run for real on localhost
    assert job.is_finished_ok, job.exit_message
    process.ctx.evaluation_job = job
    assert process.record() is None
    row = process.outputs['steps']['step_0'].get_dict()
    assert row['evaluation'] == job.uuid and row['energy_rmse_ev_per_atom'] > 0 and row['force_rmse_ev_per_a'] > 0
    process.ctx.evaluation_job = finished(exit_status=310, message='CUDA out of memory')
    assert process.record().message == 'the evaluation of step 0 failed: CUDA out of memory'


def test_an_unknown_evaluate_setting_is_refused(mofal_codes):
    overrides = {'resources': {'evaluate': {'code': 'python-mace@localhost', 'settings': {'mode': 'scan'}}}}
    with pytest.raises(ValueError, match=r'resources.evaluate.settings: \[.mode.\] are set by the campaign'):
        TemperatureCampaignWorkChain.get_builder_from_protocol(None, {'water': water_box()}, overrides=overrides)
