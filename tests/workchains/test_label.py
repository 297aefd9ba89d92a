"""The labelling work chain's own logic against fake CP2K children: queue, options, failures, collection."""

import numpy as np
import pytest
from aiida import engine, orm
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from ase import Atoms
from ase.build import molecule

from aiida_mofal.cp2k.inputs import LabelInputError
from aiida_mofal.workchains.label import LabelWorkChain
from tests.workchains.test_campaign import finished

OPTIONS = {'custom_scheduler_commands': '#SBATCH --account=proj', 'max_wallclock_seconds': 1000}


def clusters():
    frames = []
    for name in ('H2O', 'NH3'):
        atoms = molecule(name)
        atoms.info.update(config_type='cluster', charge=0, multiplicity=1)
        frames.append(atoms)
    return frames


def labels(atoms: Atoms, energy: float) -> orm.ArrayData:
    node = orm.ArrayData()
    node.set_array('energy', np.array([energy]))
    node.set_array('forces', np.full((len(atoms), 3), 0.1))
    return node


@pytest.fixture
def water() -> Atoms:
    return clusters()[0]


@pytest.fixture
def label_process(mofal_codes, monkeypatch):
    builder = LabelWorkChain.get_builder_from_protocol(
        mofal_codes['cp2k'],
        clusters(),
        protocol='xtb',
        overrides={'calculation': {'max_concurrent': 3}},
        options=OPTIONS,
    )
    process = instantiate_process(get_manager().get_runner(), builder)
    submitted = []
    # batches of max_concurrent, as a queueing scheduler gets them (localhost's limit: the last test here)
    monkeypatch.setattr('aiida_mofal.workchains.label.direct_job_slots', lambda *_: None)

    def submit(child, **_):
        submitted.append(child)
        return finished()

    monkeypatch.setattr(process, 'submit', submit)
    process.setup()
    return process, submitted


def _contains_atoms(value) -> bool:
    if isinstance(value, Atoms):
        return True
    if isinstance(value, dict):
        return any(_contains_atoms(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_atoms(v) for v in value)
    return False


def test_the_queue_holds_names_and_indices_and_every_job_gets_the_options(label_process):
    process, submitted = label_process
    assert [entry['key'] for entry in process.ctx.queue] == ['frame_0', 'frame_1', 'atom_H', 'atom_N', 'atom_O']
    assert process.ctx.queue[1] == {'key': 'frame_1', 'frame': 1} and process.ctx.queue[3]['element'] == 'N'
    assert not _contains_atoms(dict(process.ctx))  # the saved state keeps no ASE copy of any structure
    while process.has_pending():
        process.submit_batch()
    assert len(submitted) == 5  # two batches of at most max_concurrent 3
    for builder in submitted:
        options = builder.cp2k.metadata.options
        assert options['custom_scheduler_commands'] == '#SBATCH --account=proj'
        assert options['max_wallclock_seconds'] == 1000 and options['parser_name'] == 'mofal.cp2k'
        assert builder.cp2k.parameters['GLOBAL']['WALLTIME'] == 900  # CP2K stops at 90 % of the job's walltime
    assert [b.metadata.call_link_label for b in submitted] == ['frame_0', 'frame_1', 'atom_H', 'atom_N', 'atom_O']
    nitrogen = submitted[3].cp2k.parameters['FORCE_EVAL']['DFT']
    assert nitrogen['MULTIPLICITY'] == 4  # the free atom's ground state, built from the element, not a stored copy


def test_failures_are_recorded_with_their_frame_and_the_rest_is_collected(label_process):
    process, _ = label_process
    frames = clusters()
    process.submit_batch()
    process.ctx.cp2k_frame_0 = finished(exit_status=310, message='SCF did not converge')
    process.ctx.cp2k_frame_1 = finished({'labels': labels(frames[1], -300.0)})
    process.ctx.cp2k_atom_H = finished({'labels': labels(Atoms('H'), -13.0)})
    process.inspect_batch()
    process.ctx.batch = [{'key': 'atom_N', 'element': 'N'}, {'key': 'atom_O', 'element': 'O'}]
    process.ctx.cp2k_atom_N = finished({'labels': labels(Atoms('N'), -270.0)})
    process.ctx.cp2k_atom_O = finished({'labels': labels(Atoms('O'), -430.0)})
    process.inspect_batch()
    failed = process.ctx.failed['frame_0']
    assert failed['frame'] == 0 and failed['exit_status'] == 310 and failed['reason'] == 'SCF did not converge'
    exit_code = process.collect()
    assert exit_code.status == 401 and '1 structure(s) could not be labelled: frame_0' in exit_code.message
    dataset = process.outputs['dataset']
    (atoms,) = dataset.get_atoms()
    assert atoms.info['source_index'] == 1 and atoms.info['REF_energy'] == -300.0 and len(atoms) == 4
    assert process.outputs['isolated_atom_energies'].get_dict() == {'H': -13.0, 'N': -270.0, 'O': -430.0}
    assert process.outputs['failed'].get_dict()['frame_0']['pk'] == process.ctx.cp2k_frame_0.pk


def test_nothing_labelled_ends_with_all_failed(label_process):
    process, _ = label_process
    process.submit_batch()
    for key in ('frame_0', 'frame_1', 'atom_H'):
        process.ctx[f'cp2k_{key}'] = finished(exit_status=311, message='crashed twice')
    process.inspect_batch()
    assert process.collect().status == LabelWorkChain.exit_codes.ERROR_ALL_FAILED.status
    assert set(process.outputs['failed'].get_dict()) == {'frame_0', 'frame_1', 'atom_H'}


def test_unknown_calcjob_options_are_refused_before_anything_runs(mofal_codes):
    with pytest.raises(ValueError, match=r"options: unknown CalcJob option\(s\) \['queue'\]; valid: .*queue_name"):
        LabelWorkChain.get_builder_from_protocol(
            mofal_codes['cp2k'], clusters(), protocol='xtb', options={'queue': 'x'}
        )


def test_bad_input_is_refused_before_submission(mofal_codes, water):
    close = water.copy()
    close.positions[1] = close.positions[0] + [0.3, 0, 0]
    with pytest.raises(Exception, match='closer than 0.5'):
        LabelWorkChain.get_builder_from_protocol(mofal_codes['cp2k'], [close], protocol='xtb')
    odd = water.copy()
    odd.info['charge'] = 1  # 9 electrons cannot be a singlet
    with pytest.raises(Exception, match='cannot have multiplicity 1'):
        LabelWorkChain.get_builder_from_protocol(mofal_codes['cp2k'], [odd], protocol='xtb')
    uranium = water.copy()
    uranium.symbols[0] = 'U'
    uranium.info['multiplicity'] = 1
    with pytest.raises(LabelInputError, match='GFN1-xTB has no parameters for U'):
        LabelWorkChain.get_builder_from_protocol(mofal_codes['cp2k'], [uranium], protocol='xtb')
    with pytest.raises(ValueError, match="unknown override 'cutof'"):
        LabelWorkChain.get_builder_from_protocol(mofal_codes['cp2k'], [water], protocol='fast', overrides={'cutof': 1})
    cerium = water.copy()
    cerium.symbols[0] = 'Ce'  # no DZVP-MOLOPT-SR-GTH for lanthanides in CP2K's MOLOPT files
    with pytest.raises(LabelInputError, match="no basis set 'DZVP-MOLOPT-SR-GTH' for Ce"):
        LabelWorkChain.get_builder_from_protocol(mofal_codes['cp2k'], [cerium], protocol='fast')
    # the per-element basis override is free-form, and it is checked too
    with pytest.raises(LabelInputError, match="no basis set 'NOPE' for H"):
        LabelWorkChain.get_builder_from_protocol(
            mofal_codes['cp2k'], [water], protocol='fast', overrides={'basis_set': {'H': 'NOPE'}}
        )


def test_launching_invalid_inputs_is_refused_before_anything_runs(mofal_codes, water):
    builder = LabelWorkChain.get_builder_from_protocol(mofal_codes['cp2k'], [water], protocol='xtb')
    close = water.copy()
    close.positions[2] = close.positions[0] + [0.2, 0, 0]
    from aiida_mofal.data import DatasetData

    builder.dataset = DatasetData([water], level_of_theory={})
    builder.structures = {'bad': orm.StructureData(ase=close)}
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match='either `dataset`'):
        engine.run(builder)
    del builder.dataset
    with pytest.raises(ValueError, match="structure 'bad'.*closer than 0.5"):
        engine.run(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_a_direct_computer_gets_no_more_jobs_at_once_than_its_cores(mofal_codes, monkeypatch):
    """localhost (``core.direct``): jobs of the computer's default processes run one at a time, 1-process jobs two."""
    cores = mofal_codes['cp2k'].computer.get_default_mpiprocs_per_machine()
    for processes, batch in ((None, 1), (1, min(cores, 3))):
        resources = {'num_machines': 1} if processes is None else {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        builder = LabelWorkChain.get_builder_from_protocol(
            mofal_codes['cp2k'], clusters(), protocol='xtb', overrides={'calculation': {'max_concurrent': 3}},
            options={'resources': resources},
        )  # fmt: skip
        process = instantiate_process(get_manager().get_runner(), builder)
        monkeypatch.setattr(process, 'submit', lambda child, **_: finished())
        process.setup()
        process.submit_batch()
        assert len(process.ctx.batch) == batch, (processes, cores)
