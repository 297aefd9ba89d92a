"""The temperature campaign without engines: its builder's refusals, and its steps against fake children.

The steps run on an instantiated (not running) work chain whose children are stored stand-in nodes; the
calcfunctions (perturbations, CBAD selection, evaluation with a tiny random MACE model, records) run for real on
a box of two waters, which CBAD can describe (O-H bonds, H-O-H angles) and the tiny model knows.
"""

import mace  # noqa: F401  (before e3nn: the tiny model fixture imports e3nn)
import numpy as np
import pytest
from aiida import orm
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager

from aiida_mofal.data import MaceModelData
from aiida_mofal.workchains.temperature import TemperatureCampaignWorkChain
from tests.workchains.test_campaign import CIF, capture_submissions, finished, labelled, trajectory, water_box

SMALL = {'initial': {'candidates': 3}, 'explore': {'runs': 2, 'steps': 20, 'temperatures': {'stop': 200.0}}}


def temperature_campaign(overrides=None, codes=None, **kwargs):
    """An instantiated temperature campaign on one water box."""
    builder = TemperatureCampaignWorkChain.get_builder_from_protocol(
        codes, {'water': water_box()}, overrides={**SMALL, **(overrides or {})}, **kwargs
    )
    process = instantiate_process(get_manager().get_runner(), builder)
    process.setup()
    return process


@pytest.fixture
def water(mofal_codes, tiny_mace_model_file):
    model = MaceModelData(tiny_mace_model_file, trusted=True).store()
    return {'model': model, 'training': labelled([water_box(seed=i) for i in range(2)]).store()}


def md_node(frames_per_run: list, exit_status: int = 0):
    """A finished stand-in of the step's MD work chain: one trajectory per walk (None: the walk gave none)."""
    outputs = {f'walks__walk_{i}__trajectory': trajectory(frames) for i, frames in enumerate(frames_per_run) if frames}
    return finished(outputs, exit_status=exit_status, message='walk(s) 1 still blew up' if exit_status else None)


# ------------------------------------------------------------------------------------------------ builder
def test_builder_resolves_protocol_codes_options_and_structure(mofal_codes):
    builder = TemperatureCampaignWorkChain.get_builder_from_protocol(
        None, {'znim2': CIF}, overrides={'explore': {'runs': 3}}, options={'cp2k': {'queue_name': 'cpu'}}
    )
    settings = builder.settings.get_dict()
    assert settings['protocol'] == 'demo' and settings['explore']['runs'] == 3
    assert settings['resources']['cp2k']['options'] == {'queue_name': 'cpu'}
    assert builder.md_code.uuid == mofal_codes['python-mace'].uuid and len(builder.structure.sites) == 102
    assert builder.metadata.label == 'znim2-temperature'


@pytest.mark.parametrize(
    ('structure', 'overrides', 'message'),
    [
        ({'a': CIF, 'b': CIF}, None, 'a temperature campaign learns one framework; got 2 targets'),
        (CIF, {'resources': {'md': {'code': 'md@hpc'}}}, "resources.md.code: no code 'md@hpc'"),
        (CIF, {'explore': {'temperatures': {'strat': 50}}}, "temperatures.strat: unknown key (did you mean 'start'"),
        (CIF, {'explore': {'protocol': 'nvt'}}, 'explore: the runs are NPT (the paper); the MD protocol gives'),
        (CIF, {'explore': {'overrides': {'barostat': 'cubic'}}}, 'explore: '),
        (CIF, {'selection': {'resolutions': {'dihedral': 0}}}, 'resolution of dihedral must be a finite number > 0'),
        (CIF, {'train': {'overrides': {'hyperparameters': {'num_chanels': 8}}}}, 'train: unknown override'),
        (CIF, {'label': {'protocol': 'xtbb'}}, "label: unknown label protocol 'xtbb'"),
    ],
)  # fmt: skip
def test_the_builder_refuses_what_cannot_run(mofal_codes, structure, overrides, message):
    before = orm.QueryBuilder().append(orm.Node).count()
    with pytest.raises(ValueError) as error:
        TemperatureCampaignWorkChain.get_builder_from_protocol(None, structure, overrides=overrides)
    assert message in str(error.value)
    assert orm.QueryBuilder().append(orm.Node).count() == before  # nothing stored


def test_the_builder_refuses_a_structure_cbad_cannot_use(mofal_codes):
    squeezed = water_box()
    squeezed.set_cell([1.8, 5.5, 5.0], scale_atoms=False)  # bonds longer than half the cell: no minimum image
    with pytest.raises(ValueError, match='structure: CBAD cannot use it as the reference'):
        TemperatureCampaignWorkChain.get_builder_from_protocol(None, squeezed)


# ------------------------------------------------------------------------------------------------ step 0
def test_step_0_selects_perturbations_and_labels_them(mofal_codes, monkeypatch):
    process = temperature_campaign({'initial': {'candidates': 4, 'rattle': 0.05, 'strain': 0.0, 'seed': 3}})
    submitted = capture_submissions(process, monkeypatch)
    process.perturb_and_select()
    report = process.ctx.selection.get_dict()
    assert report['mode'] == 'sequential' and report['n_frames'] == 4 and 1 <= report['n_selected'] <= 4
    assert report['selected'][0]['frame'] == 0  # the first frame always brings new bins
    frames = process.ctx.selected.get_atoms()
    assert [a.info['source_frame'] for a in frames] == [r['frame'] for r in report['selected']]
    source = orm.load_node(frames[0].info['source_trajectory'])
    assert source.base.attributes.get('engine') == 'perturbation' and source.num_frames == 4
    process.label_initial()
    (label,) = submitted
    assert label.metadata.call_link_label == 'step_0_label' and label.dataset.uuid == process.ctx.selected.uuid


def test_test_ramp_and_test_set(mofal_codes, water, monkeypatch):
    test = {'frames': 2, 'steps': 30, 'temperature_range': [10.0, 1000.0]}
    process = temperature_campaign({'test': test, 'final': {'random': 0}})  # 30 steps: too few for 100 random
    process.ctx.model, process.ctx.e0s = water['model'], orm.Dict({'H': -13.6, 'O': -432.0})
    submitted = capture_submissions(process, monkeypatch)
    assert process.wants_test_set()
    process.run_test_ramp()
    (ramp,) = submitted
    (stage,) = ramp.md.settings.get_dict()['schedule']
    assert stage['temperature'] == [10.0, 1000.0] and stage['steps'] == 30 and not ramp.md.walks
    process.ctx.test_ramp = finished({'trajectory': trajectory([water_box(seed=i) for i in range(5)])})
    process.label_test_set()
    test = submitted[1]
    assert [a.info['source_frame'] for a in test.dataset.get_atoms()] == [1, 4]  # evenly spaced, start excluded
    assert test.metadata.call_link_label == 'test_label'
    assert dict(test.isolated_atom_energies) == {'H': -13.6, 'O': -432.0}
    process.ctx.test_ramp = finished(exit_status=310)
    assert process.label_test_set().status == 425
    process.ctx.test_label = finished(exit_status=402, message='every CP2K job failed')
    assert 'no test frame was labelled (every CP2K job failed)' in process.inspect_test_set().message


# ------------------------------------------------------------------------------------------------ step k
def test_explore_submits_one_md_job_with_a_displaced_start_per_run(mofal_codes, water, monkeypatch):
    overrides = {'explore': {'runs': 3, 'steps': 20, 'start_rattle': 0.1, 'temperatures': {'start': 150.0}}}
    overrides['resources'] = {'md': {'options': {'max_wallclock_seconds': 900}}}
    process = temperature_campaign(overrides)
    process.ctx.model, process.ctx.step = water['model'], 1
    submitted = capture_submissions(process, monkeypatch)
    process.explore()
    (md,) = submitted
    assert md.metadata.call_link_label == 'step_1_md' and md.md.metadata.options['max_wallclock_seconds'] == 900
    walks = md.md.walks
    assert sorted(walks) == ['walk_0', 'walk_1', 'walk_2']
    settings = [walks[w]['settings'].get_dict() for w in sorted(walks)]
    assert all(s['schedule'][0]['temperature'] == [150.0, 150.0] and s['schedule'][0]['steps'] == 20 for s in settings)
    assert all(s['ensemble'] == 'npt' and s['barostat'] == 'anisotropic' for s in settings)
    assert len({s['seed'] for s in settings}) == 3  # different initial velocities
    positions = [walks[w]['structure'].get_ase().positions for w in sorted(walks)]
    assert not np.allclose(positions[0], positions[1]) and not np.allclose(positions[1], positions[2])


def test_select_keeps_at_most_one_new_frame_per_run(mofal_codes, water):
    process = temperature_campaign()
    process.ctx.model, process.ctx.training, process.ctx.step = water['model'], water['training'], 1
    known = water['training'].get_atoms()
    squeezed = [water_box(shift=0.9, seed=5), water_box(shift=0.6, seed=6), water_box(shift=0.3, seed=7)]
    process.ctx.md = md_node([known, squeezed, None], exit_status=310)  # run 2 blew up and gave nothing
    assert process.select() is None
    report = process.ctx.selection.get_dict()
    assert [run['n_frames'] for run in report['trajectories']] == [2, 3]
    assert [run['n_selected'] for run in report['trajectories']] == [0, 1]  # training frames add nothing
    assert report['mode'] == 'best_per_trajectory' and process.accepted_any()
    assert process.ctx.step_info == {'runs': 2, 'runs_with_frames': 2, 'md_exit_status': 310}
    (frame,) = process.ctx.selected.get_atoms()
    assert frame.info['source_frame'] in (0, 1, 2)


def test_a_step_that_accepts_nothing_is_recorded_and_ends_the_campaign(mofal_codes, water):
    process = temperature_campaign()
    process.ctx.model, process.ctx.training, process.ctx.step = water['model'], water['training'], 1
    process.ctx.md = md_node([water['training'].get_atoms(), water['training'].get_atoms()[::-1]])
    process.evaluate()  # the previous step's evaluation: a step that accepts nothing records it again
    previous = process.ctx.evaluation
    process.select()
    assert not process.accepted_any()
    process.nothing_accepted()
    assert not process.should_continue()
    row = process.outputs['steps']['step_1'].get_dict()
    assert (row['step'], row['temperature_k'], row['accepted'], row['frames_seen'], row['runs']) == (1, 100.0, 0, 4, 2)
    assert row['evaluated_on'] == 'training' and row['force_rmse_ev_per_a'] > 0 and row['labelled'] == 0
    assert row['evaluation'] == previous.uuid  # not evaluated again
    process.ctx.occupancy = process.ctx.occupancy
    exit_code = process.finalise()
    assert exit_code.status == 0 and exit_code.message == (
        'step 1 at 100 K accepted no configuration (CBAD found nothing new)'
    )


def test_every_run_failing_is_an_exploration_error(mofal_codes):
    process = temperature_campaign()
    process.ctx.step = 2
    process.ctx.md = md_node([None, None], exit_status=310)
    exit_code = process.select()
    assert exit_code.status == 430
    assert exit_code.message == 'no MD run of step 2 (200 K) gave frames: walk(s) 1 still blew up'


def test_records_and_the_temperature_ladder(mofal_codes, water):
    process = temperature_campaign()
    process.ctx.model, process.ctx.training = water['model'], water['training']
    process.ctx.selection = orm.Dict({'n_frames': 3, 'n_selected': 2, 'occupied_pairs': {'start': 0, 'end': 40},
                                      'occupied_per_family': {'bond': 10, 'angle': 4}})  # fmt: skip
    process.ctx.step_info = {'runs': 0, 'runs_with_frames': 0, 'labelled': 2, 'failures': 0}
    process.ctx.roles = {'label': finished(), 'train': finished()}
    assert process.evaluate() is None and process.record() is None  # no evaluate code: in this process
    row = process.outputs['steps']['step_0'].get_dict()
    assert row['temperature_k'] is None and row['accepted'] == 2 and row['training_configurations'] == 2
    assert set(row['processes']) == {'evaluation', 'label', 'train'} and row['occupied_per_family']['bond'] == 10
    assert row['stress_rmse_gpa'] is None and row['energy_rmse_ev_per_atom'] > 0  # the fake labels carry no stress
    assert [process.should_continue() for _ in range(3)] == [True, True, False]
    assert process.ctx.temperatures == [100.0, 200.0] and process.ctx.step == 2
    assert process.ctx.stop == 'reached T_max = 200 K after 2 temperature step(s)'


def test_failures_end_with_their_exit_codes(mofal_codes, water):
    process = temperature_campaign()
    process.ctx.step = 1
    process.ctx.initial_label = finished(exit_status=402, message='no CP2K job finished')
    assert process.inspect_initial_labels().message == (
        'the step-0 configurations could not be labelled: no CP2K job finished'
    )
    process.ctx.training_run = finished(exit_status=410, message='NaN loss')
    assert process.inspect_training().message == 'training failed at step 1: NaN loss'
    process.ctx.step_label = finished(exit_status=402, message='every CP2K job failed')
    exit_code = process.merge()
    assert exit_code.status == 440 and 'no configuration of step 1 could be labelled' in exit_code.message
    process.ctx.step_label = finished({'dataset': labelled([water_box(seed=9)]), 'failed': orm.Dict({'s1': 'scf'})})
    process.ctx.training, process.ctx.step_info = water['training'], {}
    assert process.merge() is None and process.ctx.training.count == 3
    assert process.ctx.step_info == {'failures': 1, 'labelled': 1}
