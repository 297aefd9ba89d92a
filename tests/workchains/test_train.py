"""Each handler of ``TrainWorkChain`` against a fake failed ``MaceTrainCalculation``; the protocol builders."""

import pytest
from aiida import orm
from aiida.engine import ProcessHandlerReport

from aiida_mofal.calculations.mace_train import MaceTrainCalculation
from aiida_mofal.mlp.training import default_hyperparameters
from aiida_mofal.workchains.train import LR_REDUCTION, SEED_OFFSET, TrainWorkChain, get_committee_builders

EXIT = MaceTrainCalculation.exit_codes


@pytest.fixture
def train_inputs(python_code, xtb_split):
    def _inputs(hyperparameters=None, validation=True, seed=11):
        train, valid = xtb_split
        mace = {
            'code': python_code,
            'train': train,
            'hyperparameters': orm.Dict(hyperparameters or {}),
            'seed': orm.Int(seed),
            'metadata': {'options': {'max_wallclock_seconds': 600}},
        }
        if validation:
            mace['validation'] = valid
        return {'mace': mace}

    return _inputs


@pytest.fixture
def failed_training(generate_calc_job_node):
    def _failed(exit_code):
        return generate_calc_job_node('mofal.mace.train', exit_status=exit_code)

    return _failed


def test_setup_keeps_a_given_validation_set(generate_workchain, train_inputs, xtb_split):
    process = generate_workchain(TrainWorkChain, train_inputs())
    assert process.ctx.inputs.validation.uuid == xtb_split[1].uuid
    assert process.ctx.unstable_attempts == 0


def test_setup_splits_when_no_validation_set_is_given(generate_workchain, train_inputs, xtb_split):
    inputs = train_inputs(validation=False)
    inputs['validation_fraction'] = orm.Float(0.25)
    process = generate_workchain(TrainWorkChain, inputs)
    train, validation = process.ctx.inputs.train, process.ctx.inputs.validation
    assert validation.count == round(0.25 * xtb_split[0].count)
    assert train.count + validation.count == xtb_split[0].count
    assert train.creator.process_label == 'split_dataset' and train.creator.inputs.seed.value == 11


def test_handle_out_of_walltime_continues_from_the_checkpoints(generate_workchain, train_inputs, failed_training):
    child = failed_training(EXIT.ERROR_OUT_OF_WALLTIME)
    process = generate_workchain(TrainWorkChain, train_inputs({'lr': 0.02}), child)
    result = process.handle_out_of_walltime(child)
    assert isinstance(result, ProcessHandlerReport) and result.do_break and result.exit_code.status == 0
    assert process.ctx.inputs.restart_folder.uuid == child.outputs.remote_folder.uuid
    assert process.ctx.inputs.seed.value == 11 and process.ctx.inputs.hyperparameters['lr'] == 0.02  # unchanged


@pytest.mark.parametrize('exit_code', [EXIT.ERROR_NAN_LOSS, EXIT.ERROR_DIVERGENCE])
def test_handle_unstable_training_lowers_lr_then_changes_seed_then_gives_up(
    generate_workchain, train_inputs, failed_training, exit_code
):
    child = failed_training(exit_code)
    process = generate_workchain(TrainWorkChain, train_inputs({'lr': 0.05}), child)
    process.ctx.inputs.restart_folder = child.outputs.remote_folder  # as after a walltime restart

    result = process.handle_unstable_training(child)
    assert result.do_break and result.exit_code.status == 0
    hyperparameters = process.ctx.inputs.hyperparameters
    assert hyperparameters['lr'] == pytest.approx(0.05 * LR_REDUCTION)
    assert hyperparameters['swa_lr'] == pytest.approx(default_hyperparameters()['swa_lr'] * LR_REDUCTION)
    assert 'restart_folder' not in process.ctx.inputs  # the failed run's optimiser state must not come back
    assert process.ctx.inputs.seed.value == 11

    result = process.handle_unstable_training(child)
    assert result.exit_code.status == 0
    assert process.ctx.inputs.seed.value == 11 + SEED_OFFSET
    assert process.ctx.inputs.hyperparameters['lr'] == pytest.approx(0.05 * LR_REDUCTION)  # not lowered twice

    result = process.handle_unstable_training(child)
    assert result.exit_code == TrainWorkChain.exit_codes.ERROR_TRAINING_UNSTABLE


@pytest.mark.parametrize(
    'exit_code, handled',
    [
        (EXIT.ERROR_OUT_OF_WALLTIME, True),
        (EXIT.ERROR_NAN_LOSS, True),
        (EXIT.ERROR_DIVERGENCE, True),
        (EXIT.ERROR_MACE_FAILED, False),  # a crash with a reason is not retried blindly
        (EXIT.ERROR_NO_STATUS, False),
    ],
)
def test_inspect_process_dispatches_by_exit_code(generate_workchain, train_inputs, failed_training, exit_code, handled):
    child = failed_training(exit_code)
    process = generate_workchain(TrainWorkChain, train_inputs(), child)
    result = process.inspect_process()
    if handled:
        assert result.status == 0
    else:
        assert result == TrainWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE


def test_committee_builders_differ_only_in_the_seed(xtb_split, python_code):
    train, validation = xtb_split
    builders = get_committee_builders(python_code, train, 3, seed=40, validation=validation, protocol='small')
    assert [b.mace.seed.value for b in builders] == [40, 41, 42]
    assert len({b.mace.hyperparameters['num_channels'] for b in builders}) == 1
    assert all(b.mace.validation.uuid == validation.uuid for b in builders)
    with pytest.raises(ValueError, match='at least one member'):
        get_committee_builders(python_code, train, 0)


def test_builder_from_protocol_carries_gpu_options(xtb_split, python_code):
    train, validation = xtb_split
    builder = TrainWorkChain.get_builder_from_protocol(
        python_code,
        train,
        validation,
        protocol='medium',
        overrides={'device': 'cuda'},
        options={'custom_scheduler_commands': '#SBATCH --gres=gpu:1'},
    )
    assert builder.mace.device.value == 'cuda'
    assert builder.mace.metadata.options['custom_scheduler_commands'] == '#SBATCH --gres=gpu:1'
    assert builder.mace.metadata.options['max_wallclock_seconds'] == 86400
    assert builder.mace.hyperparameters['max_L'] == 1
