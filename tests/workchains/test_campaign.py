"""The campaign work chain without engines: its builder's refusals, and its steps against fake children.

The steps run on an instantiated (not running) work chain whose children are stored stand-in nodes; the MACE
inference of the small-system path runs for real (calcfunctions with a tiny random model on water).
"""

import mace  # noqa: F401  (before e3nn: the tiny model fixture imports e3nn)
import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from aiida.plugins import DataFactory
from ase import Atoms
from ase.build import molecule

from aiida_mofal.calculations.density import fit_density_model
from aiida_mofal.data import DatasetData, MaceModelData
from aiida_mofal.workchains.campaign import ClusterCampaignWorkChain
from aiida_mofal.workchains.md import walk_finished_ok, walk_outputs
from tests.structure_files import DATA

CIF = DATA / 'ZnIm2-sod_Lewis2009.cif'


def water_box(shift: float = 0.0, seed: int = 0) -> Atoms:
    """Two waters in a 6 Å cell; ``shift`` (Å) squeezes the second towards the first: a new environment."""
    first, second = molecule('H2O'), molecule('H2O')
    second.translate([2.9 - shift, 0.0, 0.0])
    atoms = first + second
    atoms.set_cell([6.0, 5.5, 5.0])
    atoms.center()
    atoms.pbc = True
    atoms.rattle(0.03, seed=seed)
    atoms.info.update(config_type='periodic', charge=0, multiplicity=1)
    return atoms


def labelled(frames):
    rng = np.random.default_rng(0)
    for atoms in frames:
        atoms.info['REF_energy'] = float(-950.0 + rng.normal())
        atoms.arrays['REF_forces'] = rng.normal(0.0, 0.3, (len(atoms), 3))
    return DatasetData(frames, level_of_theory={'method': 'test'}, isolated_atom_energies={'H': -13.6, 'O': -432.0})


def finished(outputs=None, exit_status=0, message=None):
    """A stored stand-in for a finished child process, with ``outputs`` (stored data) linked to it."""
    from plumpy import ProcessState

    node = orm.WorkflowNode()
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_status)
    if message:
        node.set_exit_message(message)
    node.store()
    for label, data in (outputs or {}).items():
        data.store().base.links.add_incoming(node, LinkType.RETURN, label)
    return node


def trajectory(frames, walk=None, status='finished'):
    trajectory_class = DataFactory('mofal.trajectory')
    arrays = {'positions': np.array([a.positions for a in frames]), 'cells': np.array([a.cell[:] for a in frames])}
    attributes = {'walk': walk, 'status': status} if walk is not None else None
    return trajectory_class(arrays, numbers=frames[0].numbers, engine='test', extra_attributes=attributes)


def explored(process, jobs, records):
    """Set the cycle's MD jobs and walk records as ``explore`` leaves them (``jobs``: job of each record)."""
    process.ctx.md_jobs = list(dict.fromkeys(jobs))
    process.ctx.walk_jobs = [process.ctx.md_jobs.index(job) for job in jobs]
    process.ctx.walk_records = records


@pytest.fixture
def water_inputs(mofal_codes, tiny_mace_model_file):
    model = MaceModelData(tiny_mace_model_file, trusted=True).store()
    return {'model': model, 'training': labelled([water_box(seed=i) for i in range(4)]).store()}


def campaign(mofal_codes, overrides=None, codes=None, **kwargs):
    """An instantiated campaign on one water box (the tiny model knows H and O)."""
    builder = ClusterCampaignWorkChain.get_builder_from_protocol(
        codes, {'water': water_box()}, overrides=overrides, **kwargs
    )
    process = instantiate_process(get_manager().get_runner(), builder)
    process.setup()
    return process


def capture_submissions(process, monkeypatch):
    submitted = []

    def submit(builder, **_):
        submitted.append(builder)
        return finished()

    monkeypatch.setattr(process, 'submit', submit)
    return submitted


# ------------------------------------------------------------------------------------------------ builder
def test_builder_resolves_the_protocol_codes_options_and_targets(mofal_codes):
    builder = ClusterCampaignWorkChain.get_builder_from_protocol(
        {'scan': mofal_codes['python-mace']},
        {'znim2': CIF},
        overrides={'stop': {'max_cycles': 1}, 'resources': {'cp2k': {'options': {'account': 'proj'}}}},
        options={'cp2k': {'queue_name': 'cpu'}, 'scan': {'max_wallclock_seconds': 600}},
    )
    settings = builder.settings.get_dict()
    assert settings['protocol'] == 'demo' and settings['stop']['max_cycles'] == 1
    assert settings['resources']['cp2k']['options'] == {'account': 'proj', 'queue_name': 'cpu'}
    assert settings['resources']['scan'] == {
        'code': 'python-mace@localhost',
        'options': {'max_wallclock_seconds': 600},
        'settings': {},
    }
    assert (
        builder.cp2k_code.uuid == mofal_codes['cp2k'].uuid and builder.scan_code.uuid == mofal_codes['python-mace'].uuid
    )
    assert len(builder.targets['znim2'].sites) == 102 and builder.metadata.label == 'campaign'


@pytest.mark.parametrize(
    ('overrides', 'options', 'message'),
    [
        ({'resources': {'cp2k': {'code': 'cp2k@cluster'}}}, None, "resources.cp2k.code: no code 'cp2k@cluster'"),
        ({'stop': {'max_cycle': 2}}, None, "stop.max_cycle: unknown key (did you mean 'max_cycles'?)"),
        ({'train': {'overrides': {'hyperparameters': {'num_chanels': 8}}}}, None, 'train: unknown override'),
        ({'train': {'overrides': {'hyperparameters': {'max_num_epochs': 5}}}}, None, 'train: start_swa (11) must be'),
        ({'explore': {'overrides': {'timestp': 1.0}}}, None, "explore: unknown override 'timestp'"),
        ({'label': {'protocol': 'xtbb'}}, None, "label: unknown label protocol 'xtbb'"),
        ({'density': {'settings': {'max_component': 4}}}, None, 'density.settings: unknown density-model settings'),
        (None, {'md': {'queue': 'gpu'}}, "resources.md.options: unknown CalcJob option(s) ['queue']"),
        (None, {'scan': {'queue_name': 'gpu'}}, "options: no step 'scan' in resources"),
        ({'resources': {'scan': {'code': 'python-mace@localhost', 'settings': {'mode': 'evaluate'}}}}, None,
         "resources.scan.settings: ['mode'] are set by the campaign"),
    ],
)  # fmt: skip
def test_the_builder_refuses_what_cannot_run(mofal_codes, overrides, options, message):
    before = orm.QueryBuilder().append(orm.Node).count()
    with pytest.raises(ValueError) as error:
        ClusterCampaignWorkChain.get_builder_from_protocol(None, {'znim2': CIF}, overrides=overrides, options=options)
    assert message in str(error.value)
    assert orm.QueryBuilder().append(orm.Node).count() == before  # nothing stored


def test_the_builder_refuses_targets_that_cannot_be_labelled(mofal_codes, tmp_path):
    uranium = water_box()
    uranium.symbols[0] = 'U'
    with pytest.raises(ValueError, match="target 'u'.*GFN1-xTB has no parameters for U"):
        ClusterCampaignWorkChain.get_builder_from_protocol(None, {'u': uranium})
    (tmp_path / 'junk.cif').write_text('no structure\n')
    with pytest.raises(ValueError, match=r'targets\[junk\]: .*junk.cif: ASE cannot read it'):
        ClusterCampaignWorkChain.get_builder_from_protocol(None, {'junk': tmp_path / 'junk.cif'})
    with pytest.raises(ValueError, match='targets: give at least one'):
        ClusterCampaignWorkChain.get_builder_from_protocol(None, {})


# ------------------------------------------------------------------------------------------------ steps
def test_explore_draws_seeded_walks_with_the_md_options(mofal_codes, water_inputs, monkeypatch):
    overrides = {'explore': {'walks': 3, 'steps': 20, 'pressure_range': [-1.0, 2.0]}}
    overrides['resources'] = {'md': {'options': {'max_wallclock_seconds': 900}}}
    process = campaign(mofal_codes, overrides)
    process.ctx.model, process.ctx.cycle = water_inputs['model'], 2
    submitted = capture_submissions(process, monkeypatch)
    process.explore()
    records = process.ctx.walk_records
    assert [(r['target'], r['walk']) for r in records] == [('water', 0), ('water', 1), ('water', 2)]
    assert len({r['seed'] for r in records}) == 3 and all(-1.0 <= r['pressure'] <= 2.0 for r in records)
    (builder,) = submitted  # one job for the target's three walks
    assert process.ctx.walk_jobs == [0, 0, 0] and builder.md.metadata.options['max_wallclock_seconds'] == 900
    assert builder.metadata.call_link_label == 'cycle_2_explore_water'
    for record in records:
        walk = builder.md.walks[f'walk_{record["walk"]}']
        settings = walk['settings'].get_dict()
        (stage,) = settings['schedule']  # normalised by the MD protocol: holds are [start, end] ramps
        assert stage['steps'] == 20 and stage['temperature'] == [300.0, 300.0]
        assert stage['pressure'] == [record['pressure']] * 2
        assert settings['seed'] == record['seed'] and walk['index'].value == record['walk']
    again = campaign(mofal_codes, overrides)
    again.ctx.model, again.ctx.cycle = water_inputs['model'], 2
    capture_submissions(again, monkeypatch)
    again.explore()
    assert again.ctx.walk_records == records  # the same campaign seed and cycle: the same walks


def test_labels_get_the_cp2k_options_of_the_resources(mofal_codes):
    process = campaign(mofal_codes, options={'cp2k': {'custom_scheduler_commands': '#SBATCH --qos=short'}})
    builder = process._label_builder(DatasetData([water_box()]), 'initial_label')
    assert builder.options.get_dict() == {'custom_scheduler_commands': '#SBATCH --qos=short'}
    assert builder.metadata.call_link_label == 'initial_label' and builder.settings['protocol'] == 'xtb'


def test_a_failed_md_job_keeps_its_finished_walks(aiida_profile):
    """Walks are told apart by the index their trajectories record; a job's failure is not every walk's."""
    frames = [water_box(seed=1), water_box(seed=2)]
    outputs = {'walks__x__trajectory': trajectory(frames, 0), 'walks__y__trajectory': trajectory(frames, 1, 'blowup')}
    job = finished(outputs, exit_status=310)
    walks = [{'target': 'water', 'walk': index} for index in range(3)]
    assert [walk_outputs(job, walk).get('trajectory') is not None for walk in walks] == [True, True, False]
    assert [walk_finished_ok(job, walk) for walk in walks] == [True, False, False]


def test_small_system_path_fits_evaluates_scans_and_records_in_process(mofal_codes, water_inputs):
    process = campaign(mofal_codes, {'density': {'settings': {'max_components': 2}}})
    process.ctx.model, process.ctx.training = water_inputs['model'], water_inputs['training']
    process.ctx.cycle_roles = {'label': finished(), 'train': finished()}
    assert process.fit_and_evaluate() is None and process.record() is None
    first = process.ctx.last_record
    assert first['cycle'] == 0 and first['evaluated_on'] == 'training' and first['walks'] == []
    assert set(first['processes']) == {'density_fit', 'evaluation', 'label', 'train'}
    assert first['evaluation'] == first['processes']['evaluation'] and first['wall_seconds'] >= 0
    assert orm.load_node(first['processes']['density_fit']).process_label == 'fit_density_model'
    assert first['delta_e_std_ev_per_atom'] > 0  # several evaluated structures: a spread, not 0 by construction

    process.ctx.cycle, process.ctx.cycle_roles = 1, {}
    frames = [water_box(shift=0.9, seed=5), water_box(seed=6)]  # the first is squeezed: unknown atoms
    ok, broken = finished({'trajectory': trajectory(frames)}), finished(exit_status=402)
    explored(process, [ok, broken], [{'target': 'water', 'walk': 0}, {'target': 'water', 'walk': 1}])
    assert process.scan() is None and process.inspect_scan() is None
    scan = process.ctx.last_scan.get_dict()
    assert scan['per_walk'] == [{'target': 'water', 'walk': 0, 'frames': 2, 'unknown_atoms': scan['unknown_atoms']}]
    assert scan['unknown_atoms'] > 0 and process.ctx.clusters is not None
    origins = {(a.info['target'], a.info['walk'], a.info['frame']) for a in process.ctx.clusters.get_atoms()}
    assert ('water', 0, 0) in origins and origins <= {('water', 0, 0), ('water', 0, 1)}  # walk 1 gave no frames
    process.nothing_unknown()  # records the cycle with the previous evaluation, does not repeat it
    second = process.ctx.last_record
    assert second['evaluation'] == first['evaluation'] and second['failures'] == 1
    assert second['frames_scanned'] == 2 and set(second['processes']) == {'scan'}
    scan_inputs = orm.load_node(second['processes']['scan']).base.links.get_incoming().all_link_labels()
    assert 'reference_0' in scan_inputs  # clusters cut with the target's own topology (extract.reference_topology)
    assert [w['finished_ok'] for w in second['walks']] == [True, False]


def test_large_system_path_submits_scan_jobs_and_stops_on_their_failure(mofal_codes, water_inputs, monkeypatch):
    scan = {'code': 'python-mace@localhost', 'options': {'max_wallclock_seconds': 600}, 'settings': {'device': 'cpu'}}
    process = campaign(mofal_codes, {'resources': {'scan': scan}})
    process.ctx.model, process.ctx.training, process.ctx.cycle = water_inputs['model'], water_inputs['training'], 1
    process.ctx.density = fit_density_model(
        water_inputs['model'], water_inputs['training'], orm.Dict({'max_components': 1})
    )
    submitted = capture_submissions(process, monkeypatch)
    frames = [water_box(seed=1), water_box(seed=2), water_box(seed=3)]
    # one job of two walks: each walk is found by the index its trajectory records, not by its link label
    two = {'walks__a__trajectory': trajectory(frames[:2], 1), 'walks__b__trajectory': trajectory(frames[2:], 0)}
    job = finished(two)
    explored(process, [job, job], [{'target': 'water', 'walk': 1}, {'target': 'water', 'walk': 0}])
    process.scan()
    (job,) = submitted
    assert (
        job.settings.get_dict() == {'device': 'cpu', 'mode': 'scan'}
        and job.density_model.uuid == process.ctx.density.uuid
    )
    assert job.metadata.options['max_wallclock_seconds'] == 600 and job.metadata.call_link_label == 'cycle_1_scan'
    info = [(a.info['walk'], a.info['frame']) for a in job.structures.get_atoms()]
    assert info == [(0, 0), (1, 0), (1, 1)]  # sorted by target and walk, indices from the records
    process.ctx.scan_job = finished(exit_status=310, message='the evaluation script failed: out of memory')
    exit_code = process.inspect_scan()
    assert exit_code.status == 450 and 'scan job of cycle 1 failed' in exit_code.message
    assert 'out of memory' in exit_code.message

    process.fit_and_evaluate()
    features, evaluation = submitted[1:]
    assert features.settings['write_features'] is True and features.structures.uuid == water_inputs['training'].uuid
    assert evaluation.settings['mode'] == 'evaluate'
    process.ctx.features_job = finished(exit_status=310, message='killed')
    process.ctx.evaluation_job = finished()
    assert 'features job of cycle 1 failed: killed' in process.record().message


@pytest.mark.parametrize(
    ('stop', 'row', 'cycle', 'reason'),
    [
        ({'mae_p95': 0.5}, {'force_mae_pk_ev_per_a': 0.4}, 1, 'MAE_p95 below 0.5 eV/Å'),
        ({'mae_p95': 0.5}, {'force_mae_pk_ev_per_a': 0.6}, 1, None),
        ({'unknown_fraction': 0.01}, {'unknown_fraction': 0.001}, 1, 'unknown fraction below 0.01'),
        ({'unknown_fraction': 0.01}, {'unknown_fraction': None}, 1, None),
        ({'max_cycles': 2}, {}, 2, '2 cycles done'),
    ],
)
def test_should_continue_stops_on_each_target(mofal_codes, stop, row, cycle, reason):
    process = campaign(mofal_codes, {'stop': stop})
    process.ctx.cycle = cycle
    process.ctx.last_record = {'force_mae_pk_ev_per_a': 1.0, 'percentile_k': 95, **row}
    assert process.should_continue() is (reason is None)
    assert process.ctx.stop_reason == reason
    assert process.ctx.cycle == (cycle + 1 if reason is None else cycle)


def test_a_campaign_starts_from_a_stored_data_set_and_model(mofal_codes, water_inputs):
    frames = [water_box(seed=i) for i in range(10, 16)]
    for atoms in frames[4:]:
        atoms.info['campaign_set'] = 'test'
    stored = labelled(frames).store()
    model = water_inputs['model']
    extra = labelled([water_box(shift=0.3, seed=i) for i in range(20, 23)]).store()  # an extra test set
    overrides = {'initial': {'dataset': stored.pk, 'model': model.pk}, 'test_sets': {'squeezed': extra.pk}}
    process = campaign(mofal_codes, overrides)
    assert process.inputs.test_sets['squeezed'].uuid == extra.uuid
    assert process.inputs.initial_dataset.uuid == stored.uuid and process.inputs.initial_model.uuid == model.uuid
    assert not process.builds_initial_set() and not process.trains_first_model()
    assert process.take_initial_dataset() is None and process.take_initial_model() is None
    assert (process.ctx.training.count, process.ctx.test.count) == (4, 2)
    assert process.ctx.e0s.get_dict() == {'H': -13.6, 'O': -432.0} and process.ctx.model.uuid == model.uuid
    process.ctx.cycle_roles = {}
    assert process.fit_and_evaluate() is None and process.record() is None
    first = process.ctx.last_record
    assert first['cycle'] == 0 and first['evaluated_on'] == 'test' and first['training_configurations'] == 4
    assert first['delta_e_std_ev_per_atom'] > 0  # two test structures
    squeezed = first['test_sets']['squeezed']  # evaluated every cycle, beside the campaign's own test set
    assert squeezed['force_mae_pk_ev_per_a'] > 0 and squeezed['delta_e_std_ev_per_atom'] > 0
    assert 'test_squeezed' in first['processes']

    from aiida_mofal.analysis.report import status_table

    assert 'test set squeezed, cycle 0: MAE_p95' in status_table([first])


def test_an_extxyz_initial_set_brings_its_isolated_atoms_and_bad_starts_are_refused(mofal_codes, tmp_path):
    from ase.io import write

    frames = labelled([water_box(seed=i) for i in range(3)]).get_atoms()
    atoms = [Atoms(symbol, cell=[10, 10, 10]) for symbol in ('H', 'O')]
    for single, energy in zip(atoms, (-13.6, -432.0)):
        single.info.update(config_type='IsolatedAtom', REF_energy=energy)
        single.arrays['REF_forces'] = np.zeros((1, 3))
    path = tmp_path / 'start.extxyz'
    write(path, frames + atoms, format='extxyz')
    builder = ClusterCampaignWorkChain.get_builder_from_protocol(
        None, {'water': water_box()}, overrides={'initial': {'dataset': str(path)}}
    )
    dataset = builder.initial_dataset
    assert dataset.count == 3 and dataset.isolated_atom_energies == {'H': -13.6, 'O': -432.0}
    write(path, frames, format='extxyz')  # no isolated atoms
    with pytest.raises(ValueError, match='initial.dataset: no isolated-atom energies for H, O'):
        ClusterCampaignWorkChain.get_builder_from_protocol(
            None, {'water': water_box()}, overrides={'initial': {'dataset': str(path)}}
        )
    with pytest.raises(ValueError, match='initial.model: node .* is a StructureData'):
        ClusterCampaignWorkChain.get_builder_from_protocol(
            None,
            {'water': water_box()},
            overrides={'initial': {'model': orm.StructureData(ase=water_box()).store().pk}},
        )


# ------------------------------------------------------------------------------------------------ test set
def test_the_initial_set_holds_no_test_frames_when_md_samples_them(mofal_codes, monkeypatch):
    initial = {'periodic_frames': 2, 'clusters': 0, 'test_frames': 3}
    for source, tests in (('md', 0), ('perturbed', 3)):
        process = campaign(mofal_codes, {'initial': {**initial, 'test_source': source}})
        submitted = capture_submissions(process, monkeypatch)
        process.initialise()
        (builder,) = submitted
        sets = [atoms.info['campaign_set'] for atoms in builder.dataset.get_atoms()]
        assert sets.count('train') == 2 and sets.count('test') == tests


def test_the_md_test_set_is_sampled_after_the_first_model_and_labelled_once(mofal_codes, water_inputs, monkeypatch):
    from aiida_mofal.workchains.campaign_test_set import CampaignTestSetWorkChain

    overrides = {'initial': {'test_frames': 3, 'test_temperature': 550.0, 'test_steps': 40}}
    process = campaign(mofal_codes, overrides)
    process.ctx.model, process.ctx.e0s = water_inputs['model'], orm.Dict({'H': -13.6, 'O': -432.0}).store()
    assert process.samples_test_set()
    submitted = capture_submissions(process, monkeypatch)
    process.sample_test_set()
    (builder,) = submitted
    assert builder.process_class is CampaignTestSetWorkChain and builder.model.uuid == water_inputs['model'].uuid
    assert builder.metadata.call_link_label == 'test_set' and sorted(builder.targets) == ['water']

    process.ctx.test_set_run = finished(exit_status=410, message='no test-set MD walk finished')
    assert process.inspect_test_set().status == 415
    test = labelled([water_box(seed=i) for i in range(3)])
    process.ctx.test_set_run = finished({'dataset': test})
    assert process.inspect_test_set() is None and process.ctx.test.uuid == test.uuid
    assert not process.samples_test_set()  # labelled once: every later model is evaluated on the same frames
    perturbed = campaign(mofal_codes, {'initial': {'test_source': 'perturbed'}})
    assert not perturbed.samples_test_set()

    # the child: one walk per target at the test temperature, then frames of its second half labelled
    child = instantiate_process(get_manager().get_runner(), builder)
    jobs = capture_submissions(child, monkeypatch)
    child.explore()
    (md,) = jobs
    (stage,) = md.md.walks['walk_0']['settings'].get_dict()['schedule']
    assert stage['steps'] == 40 and stage['temperature'] == [550.0, 550.0]
    assert md.md.walks['walk_0']['settings']['ensemble'] == 'nvt'  # the target's cell (initial.test_ensemble)
    assert md.metadata.call_link_label == 'test_explore_water'
    frames = [water_box(seed=i) for i in range(5)]
    child.ctx.test_md_water = finished({'walks__walk_0__trajectory': trajectory(frames, 0)})
    child.label()
    label = jobs[-1]
    chosen = label.dataset.get_atoms()
    assert [a.info['frame'] for a in chosen] == [2, 3, 4] and {a.info['campaign_set'] for a in chosen} == {'test'}
    assert label.metadata.call_link_label == 'test_label' and label.isolated_atom_energies.get_dict()['H'] == -13.6
    child.ctx.test_label = finished({'dataset': test})
    assert child.results() is None and child.outputs['dataset'].uuid == test.uuid
    child.ctx.test_md_water = finished(exit_status=310, message='blew up')
    assert child.label().status == 410
    # a walk that blew up after 4 good dumps: its frames before the failure, less the last one
    outputs = {'walks__walk_0__trajectory': trajectory(frames, 0, status='blowup')}
    child.ctx.test_md_water = finished(outputs, exit_status=310, message='blew up')
    child.label()
    assert [a.info['frame'] for a in jobs[-1].dataset.get_atoms()] == [1, 2, 3]


def test_gated_walks_get_the_density_model_and_the_gate(mofal_codes, water_inputs, monkeypatch):
    overrides = {'explore': {'walks': 2, 'steps': 20, 'gate_unknown_fraction': 0.02, 'gate_every': 2}}
    process = campaign(mofal_codes, overrides)
    process.ctx.model, process.ctx.cycle = water_inputs['model'], 1
    process.ctx.density = fit_density_model(
        water_inputs['model'], water_inputs['training'], orm.Dict({'max_components': 1})
    )
    submitted = capture_submissions(process, monkeypatch)
    process.explore()
    (builder,) = submitted
    assert builder.md.gate.get_dict() == {'unknown_fraction': 0.02, 'every': 2}
    assert builder.md.density_model.uuid == process.ctx.density.uuid
    with pytest.raises(ValueError, match='engine ase only'):
        campaign(mofal_codes, {'explore': {'engine': 'lammps-python', 'gate_unknown_fraction': 0.02}})


def test_every_labelling_packs_as_resources_say(mofal_codes, water_inputs, monkeypatch):
    """``resources.cp2k.pack`` reaches the cycle labels and the MD test set labels (it once missed those)."""
    overrides = {'initial': {'test_frames': 3, 'test_steps': 40}, 'resources': {'cp2k': {'pack': 4}}}
    process = campaign(mofal_codes, overrides)
    assert process._label_builder(DatasetData([water_box()]), 'initial_label').settings['calculation']['pack'] == 4
    process.ctx.model, process.ctx.e0s = water_inputs['model'], orm.Dict({'H': -13.6, 'O': -432.0}).store()
    submitted = capture_submissions(process, monkeypatch)
    process.sample_test_set()
    child = instantiate_process(get_manager().get_runner(), submitted[0])
    jobs = capture_submissions(child, monkeypatch)
    child.explore()
    child.ctx.test_md_water = finished(
        {'walks__walk_0__trajectory': trajectory([water_box(seed=i) for i in range(5)], 0)}
    )
    child.label()
    assert jobs[-1].metadata.call_link_label == 'test_label'
    assert jobs[-1].settings['calculation']['pack'] == 4
