"""``mofal.mace.train``: MACE's own training (``mace_run_train``) as a remote job; ``split_dataset``.

The job copies the data sets as extxyz files (MACE's default ``REF_*`` keys, so nothing is renamed), writes
the ``mace_run_train`` arguments (:func:`aiida_mofal.mlp.training.mace_arguments`) to a JSON file and runs
``scripts/mace_train.py`` with a ``python-mace`` code, which calls ``python -m mace.cli.run_train`` and stops it
cleanly before the wall time runs out. The same job runs on a laptop CPU (``device='cpu'``) or a GPU node
(``device='cuda'`` plus scheduler options, e.g. ``custom_scheduler_commands='#SBATCH --gres=gpu:1'``).

What the job sets itself and why (E0s, fine-tuning, restarts) is in :mod:`aiida_mofal.mlp.training`; how the
parser reads the outcome in :mod:`aiida_mofal.mlp.train_log` and :mod:`aiida_mofal.calculations.parsers.mace_train`.
"""

from __future__ import annotations

import os

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data.dataset import DatasetData
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.mlp.training import (
    DEVICES,
    DTYPES,
    TrainingFiles,
    check_training_inputs,
    mace_arguments,
    model_file_name,
    run_tag,
    validate_hyperparameters,
)

from .script import SCRIPTS, ScriptCalculation, write_model

__all__ = ['MaceTrainCalculation', 'split_dataset']


@calcfunction
def split_dataset(dataset: DatasetData, validation_fraction: orm.Float, seed: orm.Int) -> dict:
    """Split a data set at random into ``train`` and ``validation`` (seeded, so the split is reproducible).

    At least one configuration goes to each side; level of theory and E0s are kept on both.
    """
    count = dataset.count
    fraction = float(validation_fraction.value)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f'validation_fraction must be between 0 and 1, got {fraction}.')
    if count < 2:
        raise ValueError(f'data set {dataset.pk} has {count} configuration(s); a split needs at least 2.')
    frames = dataset.get_atoms()
    order = np.random.default_rng(int(seed.value)).permutation(count)
    n_valid = min(count - 1, max(1, round(fraction * count)))
    valid_index = set(order[:n_valid].tolist())
    common = {'level_of_theory': dataset.level_of_theory, 'isolated_atom_energies': dataset.isolated_atom_energies}
    return {
        'train': DatasetData([a for i, a in enumerate(frames) if i not in valid_index], **common),
        'validation': DatasetData([a for i, a in enumerate(frames) if i in valid_index], **common),
    }


def _validate_choice(name: str, choices: tuple[str, ...]):
    def validate(value, _ctx):
        if value is not None and value.value not in choices:
            return f'{name} must be one of {choices}, got {value.value!r}.'

    return validate


def _validate_hyperparameters(value, _ctx):
    try:
        validate_hyperparameters(value.get_dict())
    except ValueError as exception:
        return str(exception)


class MaceTrainCalculation(ScriptCalculation):
    """Train a MACE model with ``mace_run_train`` on a training and a validation data set."""

    SCRIPT = SCRIPTS / 'mace_train.py'
    CONFIG = 'mace_args.json'
    STDOUT = 'mace.out'
    STDERR = 'mace.err'
    STATUS_FILE = 'mofal_status.json'
    TRAIN_FILE = TrainingFiles.TRAIN
    VALID_FILE = TrainingFiles.VALID
    TEST_FILE = TrainingFiles.TEST
    PARENT_FILE = TrainingFiles.PARENT

    @classmethod
    def define(cls, spec):
        """Define the inputs, outputs and exit codes."""
        super().define(spec)
        spec.input('train', valid_type=DatasetData, help='Training configurations with energies and forces.')
        spec.input('validation', valid_type=DatasetData, help='Validation configurations (early stopping, errors).')
        spec.input('test', valid_type=DatasetData, required=False, help='Held-out configurations, only evaluated.')
        spec.input(
            'hyperparameters',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            validator=_validate_hyperparameters,
            help='mace_run_train options overriding the protocol defaults (see protocols/mace.yaml).',
        )
        spec.input('seed', valid_type=orm.Int, default=lambda: orm.Int(123))
        spec.input(
            'dtype', valid_type=orm.Str, default=lambda: orm.Str('float64'), validator=_validate_choice('dtype', DTYPES)
        )
        spec.input(
            'device', valid_type=orm.Str, default=lambda: orm.Str('cpu'), validator=_validate_choice('device', DEVICES)
        )
        spec.input('parent_model', valid_type=MaceModelData, required=False, help='Model to fine-tune from.')
        spec.input(
            'restart_folder',
            valid_type=orm.RemoteData,
            required=False,
            help='Remote folder of an interrupted training whose checkpoints/ to continue from (same seed).',
        )
        spec.input(
            'metadata.options.walltime_fraction',
            valid_type=float,
            default=0.95,
            help='MACE is stopped cleanly at this fraction of max_wallclock_seconds.',
        )
        spec.inputs['metadata']['options']['parser_name'].default = 'mofal.mace.train'

        spec.output('model', valid_type=MaceModelData, help='The final model (stage two when swa, EMA weights).')
        spec.output('compiled_model', valid_type=orm.SinglefileData, required=False, help='TorchScript model.')
        spec.output('metrics', valid_type=orm.Dict, required=False, help='Final errors on train/valid/test.')
        spec.output('training_curve', valid_type=orm.ArrayData, required=False, help='Validation errors per epoch.')
        spec.default_output_node = 'metrics'

        spec.exit_code(300, 'ERROR_NO_STATUS', message='The job left no status file: the wrapper did not run.')
        spec.exit_code(301, 'ERROR_MISSING_OUTPUT', message='MACE finished but {what} is missing.')
        spec.exit_code(302, 'ERROR_MACE_FAILED', message='mace_run_train failed (return code {code}): {error}')
        spec.exit_code(310, 'ERROR_NAN_LOSS', message='The loss became NaN or infinite at epoch {epoch}.')
        spec.exit_code(
            320,
            'ERROR_DIVERGENCE',
            message='Training diverged: final validation force RMSE {final:.4g} eV/Å is {ratio:.3g} times its best.',
        )
        spec.exit_code(
            400,
            'ERROR_OUT_OF_WALLTIME',
            message='Stopped at the wall time after {elapsed:.0f} s; restartable from checkpoints/ in the remote '
            'folder.',
        )

    @classmethod
    def validate_inputs(cls, inputs, ctx):
        """Refuse unlabelled sets, mixed levels of theory, unseen elements and missing E0s before submission."""
        try:
            check_training_inputs(inputs['train'], inputs.get('validation'), inputs.get('test'))
        except (KeyError, ValueError) as exception:
            return str(exception)
        return None

    def prepare_for_submission(self, folder):
        """Write the data sets and the MACE arguments; copy the parent model and checkpoints."""
        train, validation, test = self.inputs.train, self.inputs.validation, self.inputs.get('test')
        e0s = check_training_inputs(train, validation, test)
        hyperparameters = validate_hyperparameters(self.inputs.hyperparameters.get_dict())
        for name, dataset in ((self.TRAIN_FILE, train), (self.VALID_FILE, validation), (self.TEST_FILE, test)):
            if dataset is not None:
                with folder.open(name, 'w') as handle:
                    handle.write(dataset.get_text())
        argv = mace_arguments(
            hyperparameters,
            e0s=e0s,
            seed=self.inputs.seed.value,
            dtype=self.inputs.dtype.value,
            device=self.inputs.device.value,
            has_test=test is not None,
            has_stress='stress' in train.labels,
            fine_tune='parent_model' in self.inputs,
            restart='restart_folder' in self.inputs,
            num_train=train.count,
            num_valid=validation.count,
        )
        options = self.inputs.metadata.options
        walltime = options.get('max_wallclock_seconds')
        deadline = walltime * options.walltime_fraction if walltime else None
        config = {'argv': argv, 'deadline_seconds': deadline, 'status_file': self.STATUS_FILE}

        local_copy_list, remote_copy_list, excluded = [], [], []
        if 'parent_model' in self.inputs:  # MACE's file, made from the checked weights
            excluded.append(write_model(folder, self.inputs.parent_model, self.PARENT_FILE))
        if 'restart_folder' in self.inputs:
            remote = self.inputs.restart_folder
            source = os.path.join(remote.get_remote_path(), 'checkpoints')
            remote_copy_list.append((remote.computer.uuid, source, 'checkpoints'))
        tag = run_tag(self.inputs.seed.value)
        models = [model_file_name(stage_two, compiled) for stage_two in (False, True) for compiled in (False, True)]
        return self.script_calcinfo(
            folder,
            config,
            local_copy_list=local_copy_list,
            remote_copy_list=remote_copy_list,
            retrieve_list=[self.STATUS_FILE, f'logs/{tag}.log', f'results/{tag}_train.txt', *models],
            provenance_exclude_list=excluded,
        )
