"""Real failures of real MACE trainings and how the work chain handles them; the CLI end to end."""

import json
import re

import pytest
from aiida import engine, orm
from click.testing import CliRunner

from aiida_mofal.calculations.mace_train import MaceTrainCalculation
from aiida_mofal.cli import cmd_root
from aiida_mofal.workchains.train import TrainWorkChain

pytestmark = pytest.mark.engine

SHORT = {'max_num_epochs': 1, 'swa': False, 'patience': 1}


def test_nan_loss_really_lowers_the_learning_rate(python_code, xtb_split):
    """lr=1e6 gives NaN in the first epoch for real, and so does 1e5: the work chain retried with the lower rate.

    The rest of the escalation (a new seed, then ERROR_TRAINING_UNSTABLE) is tested against fake failed children in
    tests/workchains/test_train.py; two real jobs show that the handler's change reaches the next real job.
    """
    train, validation = xtb_split
    builder = TrainWorkChain.get_builder_from_protocol(
        python_code, train, validation, overrides={'hyperparameters': {**SHORT, 'lr': 1.0e6}}, seed=11
    )
    builder.max_iterations = orm.Int(2)
    _, node = engine.run_get_node(builder)
    assert node.exit_status == TrainWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status
    calcs = sorted((n for n in node.called if n.process_class is MaceTrainCalculation), key=lambda n: n.ctime)
    assert [c.exit_status for c in calcs] == [MaceTrainCalculation.exit_codes.ERROR_NAN_LOSS.status] * 2
    assert [c.inputs.hyperparameters['lr'] for c in calcs] == pytest.approx([1.0e6, 1.0e5])
    assert [c.inputs.seed.value for c in calcs] == [11, 11]
    assert 'model' not in node.outputs


def test_walltime_stops_cleanly_and_the_next_job_continues_from_the_checkpoint(python_code, xtb_split):
    """A 70 s deadline (140 s wall time x 0.5) interrupts a 200-epoch training twice; the second job resumes.

    70 s, not 50 s: on CI's loaded machine a first job once saved no checkpoint within 50 s (start-up and data
    loading took most of it), so the second had nothing to resume from.
    """
    train, validation = xtb_split
    builder = TrainWorkChain.get_builder_from_protocol(
        python_code,
        train,
        validation,
        overrides={'hyperparameters': {'max_num_epochs': 200, 'start_swa': 150}},
        options={'max_wallclock_seconds': 140, 'walltime_fraction': 0.5},
        seed=12,
    )
    builder.max_iterations = orm.Int(2)
    _, node = engine.run_get_node(builder)
    assert node.exit_status == TrainWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status
    first, second = sorted(node.called, key=lambda n: n.ctime)[-2:]
    walltime = MaceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status
    assert first.exit_status == walltime and second.exit_status == walltime
    assert second.inputs.restart_folder.uuid == first.outputs.remote_folder.uuid
    assert '--restart_latest' in second.base.repository.get_object_content('mace_args.json')
    log = second.outputs.retrieved.base.repository.get_object_content('mofal_run-12.log')
    loaded = re.search(r'Loading checkpoint: (?:\./)?checkpoints/mofal_run-12_epoch-(\d+)\.pt', log)
    assert loaded, "the second job did not load the first job's checkpoint"
    # MACE evaluates the model before its first step: in the second job that is the loaded checkpoint, so the
    # error equals the first job's error at the checkpoint's epoch (and not the error of a fresh model)
    epoch = int(loaded.group(1))
    first_epochs, first_errors = (first.outputs.training_curve.get_array(k) for k in ('epoch', 'rmse_f'))
    second_epochs, second_errors = (second.outputs.training_curve.get_array(k) for k in ('epoch', 'rmse_f'))
    at_checkpoint = first_errors[first_epochs == epoch][0]
    assert second_epochs[0] == -1
    assert second_errors[0] == pytest.approx(at_checkpoint, rel=1e-3)
    assert abs(at_checkpoint - first_errors[0]) > 0.05 * first_errors[0]


def test_cli_trains_with_a_split_and_refuses_missing_e0s(python_code, xtb_dataset):
    from aiida_mofal.data import DatasetData

    runner = CliRunner()
    overrides = ['--override', 'hyperparameters.max_num_epochs=2', '--override', 'hyperparameters.swa=false']
    result = runner.invoke(cmd_root, ['train', str(xtb_dataset.pk), '--seed', '3', *overrides, '--json'])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    model = orm.load_node(data['model'])
    assert model.elements == ['H', 'C', 'N', 'O']
    assert data['metrics']['valid']['rmse_f_meV_per_A'] > 0
    workchain = orm.load_node(data['workchain'])
    split = [n for n in workchain.called if n.process_label == 'split_dataset']
    assert len(split) == 1 and split[0].inputs.dataset.uuid == xtb_dataset.uuid

    plain = runner.invoke(cmd_root, ['train', str(xtb_dataset.pk), '--override', 'hyperparameters.lr_max=1'])
    assert plain.exit_code != 0 and "unknown override 'hyperparameters.lr_max'" in plain.output

    energies = {k: v for k, v in xtb_dataset.isolated_atom_energies.items() if k != 'C'}
    no_e0 = DatasetData(xtb_dataset.get_atoms(), isolated_atom_energies=energies).store()
    before = orm.QueryBuilder().append(orm.WorkChainNode).count()
    refused = runner.invoke(cmd_root, ['train', str(no_e0.pk)])
    assert refused.exit_code != 0
    assert 'no isolated-atom energy (E0) for C' in refused.output
    assert orm.QueryBuilder().append(orm.WorkChainNode).count() == before
