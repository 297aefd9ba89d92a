"""``mofal.mace.train``: MACE's own training (``mace_run_train``) as a remote job, and its parser.

The job copies the data sets as extxyz files (MACE's default ``REF_*`` keys, so nothing is renamed), writes
the ``mace_run_train`` arguments to a JSON file and runs ``scripts/mace_train.py`` with a ``python-mace``
code, which calls ``python -m mace.cli.run_train`` and stops it cleanly before the wall time runs out.
The same job runs on a laptop CPU (``device='cpu'``) or a GPU node (``device='cuda'`` plus scheduler
options, e.g. ``custom_scheduler_commands='#SBATCH --gres=gpu:1'``).

Choices that a user cannot override through ``hyperparameters`` (the job sets them from its inputs):

* E0s come from the training set's ``isolated_atom_energies`` (same level of theory as the labels). A
  training element without one is refused before submission; ``--E0s=average`` is never used, because on
  a set with few compositions its least-squares fit is meaningless.
* Fine-tuning from ``parent_model`` uses ``--foundation_model=parent.model`` with
  ``--multiheads_finetuning=False``: the parent's architecture and weights are the starting point (its
  ``r_max``, channels and ``max_L`` win over the hyperparameters), and all of it is trained on the new data.
* Continuing an interrupted run uses ``restart_folder`` (the ``remote_folder`` of the job that ran out of
  time): its ``checkpoints/`` directory is copied and ``--restart_latest`` given; the seed must be the same,
  as the checkpoint name contains it.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob, calcfunction
from aiida.parsers import Parser

from aiida_mofal.data.dataset import DatasetData
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.protocols import read_protocol_file

__all__ = [
    'CONTROLLED_ARGUMENTS',
    'DIVERGENCE_RATIO',
    'MaceTrainCalculation',
    'MaceTrainParser',
    'check_training_inputs',
    'default_hyperparameters',
    'mace_arguments',
    'parse_error_tables',
    'parse_training_curve',
    'split_dataset',
    'validate_hyperparameters',
]

SCRIPT = Path(__file__).parent / 'scripts' / 'mace_train.py'
RUN_NAME = 'mofal'
DIVERGENCE_RATIO = 10.0  # final / best validation force RMSE above this: the run diverged
DTYPES = ('float32', 'float64')
DEVICES = ('cpu', 'cuda', 'mps', 'xpu')
STORE_TRUE = {'swa', 'ema', 'keep_checkpoints'}  # mace_run_train flags without a value

# Arguments the job derives from its inputs; giving them as hyperparameters is an error naming the input.
CONTROLLED_ARGUMENTS = {
    'name': 'fixed to "mofal"',
    'seed': 'the `seed` input',
    'default_dtype': 'the `dtype` input',
    'device': 'the `device` input',
    'E0s': "the training set's isolated_atom_energies",
    'train_file': 'the `train` input',
    'valid_file': 'the `validation` input',
    'test_file': 'the `test` input',
    'foundation_model': 'the `parent_model` input',
    'restart_latest': 'the `restart_folder` input',
    'compute_stress': 'whether the training set has stresses',
    'loss': 'whether the training set has stresses',
    'energy_key': 'the REF_* convention of mofal.dataset',
    'forces_key': 'the REF_* convention of mofal.dataset',
    'stress_key': 'the REF_* convention of mofal.dataset',
}


def default_hyperparameters() -> dict:
    """Return the protocol file's default MACE hyperparameters (what a job uses for keys it is not given)."""
    return read_protocol_file('mace')['default_inputs']['hyperparameters']


def validate_hyperparameters(hyperparameters: Mapping) -> dict:
    """Return ``hyperparameters`` checked against the keys and types of the protocol file's defaults.

    :raises ValueError: for a key the job controls itself, an unknown key (a typo must not pass silently),
        a value of the wrong type, or a stage two that would start after the last epoch.
    """
    import difflib

    defaults = default_hyperparameters()
    result = {}
    for key, value in dict(hyperparameters).items():
        if key in CONTROLLED_ARGUMENTS:
            raise ValueError(f'hyperparameter {key!r} is set by the job from {CONTROLLED_ARGUMENTS[key]}; remove it.')
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f' Did you mean {close[0]!r}?' if close else ''
            raise ValueError(f'unknown MACE hyperparameter {key!r}.{hint} Known: {", ".join(sorted(defaults))}')
        expected = type(defaults[key])
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(f'hyperparameter {key!r} must be a {expected.__name__}, got {value!r}.')
        result[key] = value
    merged = {**defaults, **result}
    if merged['swa'] and merged['start_swa'] >= merged['max_num_epochs']:
        raise ValueError(
            f'start_swa ({merged["start_swa"]}) must be smaller than max_num_epochs ({merged["max_num_epochs"]}), '
            'or stage two never starts and no stage-two model is written; lower start_swa or set swa to false.'
        )
    return result


def check_training_inputs(
    train: DatasetData, validation: DatasetData | None = None, test: DatasetData | None = None
) -> dict[str, float]:
    """Return the E0s (eV, by element symbol) for a training run, or raise naming what is wrong and the fix.

    Refuses: sets without energy and force labels, sets from different levels of theory, elements of the
    validation/test sets that the training set lacks, and any training element without an isolated-atom
    energy in the training set.
    """
    sets = {'train': train, 'validation': validation, 'test': test}
    for name, dataset in sets.items():
        if dataset is None:
            continue
        missing = {'energy', 'forces'} - set(dataset.labels)
        if missing:
            raise ValueError(
                f'the {name} data set (pk {dataset.pk}) has no {" and ".join(sorted(missing))} labels; '
                'label it first (mofal label) or choose a labelled set.'
            )
        if name != 'train' and dataset.level_of_theory != train.level_of_theory:
            raise ValueError(
                f'the {name} data set has level of theory {dataset.level_of_theory} but the training set has '
                f'{train.level_of_theory}; errors across levels of theory are meaningless.'
            )
        if name != 'train':
            unseen = sorted(set(dataset.elements) - set(train.elements))
            if unseen:
                raise ValueError(
                    f'the {name} data set contains {", ".join(unseen)}, which the training set lacks; the model '
                    'cannot learn them. Add configurations with these elements to the training set.'
                )
    energies = train.isolated_atom_energies or {}
    lacking = [symbol for symbol in train.elements if symbol not in energies]
    if lacking:
        raise ValueError(
            f'the training set (pk {train.pk}) has no isolated-atom energy (E0) for {", ".join(lacking)}. MACE '
            'needs one per element at the same level of theory as the labels; averaging is not used because it '
            'is unreliable on sets with few compositions. Fix: label the free atoms (mofal label does it with '
            'isolated_atoms: true) and create the data set with isolated_atom_energies={"'
            + '": ..., "'.join(lacking)
            + '": ...} (eV).'
        )
    return {symbol: float(energies[symbol]) for symbol in train.elements}


def mace_arguments(
    hyperparameters: Mapping,
    *,
    e0s: Mapping[str, float],
    seed: int,
    dtype: str,
    device: str,
    has_test: bool = False,
    has_stress: bool = False,
    fine_tune: bool = False,
    restart: bool = False,
    num_train: int | None = None,
    num_valid: int | None = None,
) -> list[str]:
    """Return the ``mace_run_train`` argument list (protocol defaults updated with ``hyperparameters``).

    Batch sizes larger than the training (validation) set are reduced to its size: MACE drops incomplete
    batches, so a tiny first set of an active-learning campaign would otherwise give an empty loader.
    """
    from ase.data import atomic_numbers

    merged = {**default_hyperparameters(), **hyperparameters}
    if num_train:
        merged['batch_size'] = min(int(merged['batch_size']), num_train)
    if num_valid:
        merged['valid_batch_size'] = min(int(merged['valid_batch_size']), num_valid)
    argv = [
        f'--name={RUN_NAME}',
        f'--seed={seed}',
        f'--default_dtype={dtype}',
        f'--device={device}',
        f'--train_file={MaceTrainCalculation.TRAIN_FILE}',
        f'--valid_file={MaceTrainCalculation.VALID_FILE}',
        '--energy_key=REF_energy',
        '--forces_key=REF_forces',
        '--E0s=' + repr({atomic_numbers[symbol]: float(value) for symbol, value in e0s.items()}),
        '--model_dir=.',
        '--log_dir=logs',
        '--checkpoints_dir=checkpoints',
        '--results_dir=results',
        '--plot=False',
    ]
    if has_test:
        argv.append(f'--test_file={MaceTrainCalculation.TEST_FILE}')
    if has_stress:
        argv += ['--stress_key=REF_stress', '--compute_stress=True', '--loss=stress']
    else:
        argv.append('--loss=weighted')
    if fine_tune:
        argv += [f'--foundation_model={MaceTrainCalculation.PARENT_FILE}', '--multiheads_finetuning=False']
    if restart:
        argv.append('--restart_latest')
    for key, value in merged.items():
        if key in STORE_TRUE:
            if value:
                argv.append(f'--{key}')
        else:
            argv.append(f'--{key}={value}')
    return argv


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


def _validate_dtype(value, _ctx):
    if value is not None and value.value not in DTYPES:
        return f'dtype must be one of {DTYPES}, got {value.value!r}.'


def _validate_device(value, _ctx):
    if value is not None and value.value not in DEVICES:
        return f'device must be one of {DEVICES}, got {value.value!r}.'


def _validate_hyperparameters(value, _ctx):
    try:
        validate_hyperparameters(value.get_dict())
    except ValueError as exception:
        return str(exception)


def _validate_inputs(inputs, _ctx):
    try:
        check_training_inputs(inputs['train'], inputs.get('validation'), inputs.get('test'))
    except (KeyError, ValueError) as exception:
        return str(exception)


class MaceTrainCalculation(CalcJob):
    """Train a MACE model with ``mace_run_train`` on a training and a validation data set."""

    TRAIN_FILE = 'train.xyz'
    VALID_FILE = 'valid.xyz'
    TEST_FILE = 'test.xyz'
    PARENT_FILE = 'parent.model'
    ARGS_FILE = 'mace_args.json'
    STATUS_FILE = 'mofal_status.json'
    STDOUT = 'mace.out'
    STDERR = 'mace.err'

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
        spec.input('dtype', valid_type=orm.Str, default=lambda: orm.Str('float64'), validator=_validate_dtype)
        spec.input('device', valid_type=orm.Str, default=lambda: orm.Str('cpu'), validator=_validate_device)
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
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['withmpi'].default = False
        calcjob_validator = spec.inputs.validator

        def validate_all(inputs, ctx):
            return (calcjob_validator(inputs, ctx) if calcjob_validator else None) or _validate_inputs(inputs, ctx)

        spec.inputs.validator = validate_all

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

    def prepare_for_submission(self, folder):
        """Write the data sets and the MACE arguments; copy the parent model and checkpoints."""
        train, validation = self.inputs.train, self.inputs.validation
        test = self.inputs.get('test')
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
            num_valid=self.inputs.validation.count if 'validation' in self.inputs else None,
        )
        options = self.inputs.metadata.options
        walltime = options.get('max_wallclock_seconds')
        deadline = walltime * options.walltime_fraction if walltime else None
        with folder.open(self.ARGS_FILE, 'w') as handle:
            json.dump({'argv': argv, 'deadline_seconds': deadline, 'status_file': self.STATUS_FILE}, handle, indent=1)
        folder.insert_path(str(SCRIPT), SCRIPT.name)

        calcinfo = datastructures.CalcInfo()
        calcinfo.local_copy_list = []
        calcinfo.remote_copy_list = []
        if 'parent_model' in self.inputs:
            parent = self.inputs.parent_model
            calcinfo.local_copy_list.append((parent.uuid, parent.FILENAME, self.PARENT_FILE))
        if 'restart_folder' in self.inputs:
            remote = self.inputs.restart_folder
            source = os.path.join(remote.get_remote_path(), 'checkpoints')
            calcinfo.remote_copy_list.append((remote.computer.uuid, source, 'checkpoints'))

        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [SCRIPT.name, self.ARGS_FILE]
        codeinfo.stdout_name = self.STDOUT
        codeinfo.stderr_name = self.STDERR
        calcinfo.codes_info = [codeinfo]
        tag = f'{RUN_NAME}_run-{self.inputs.seed.value}'
        calcinfo.retrieve_list = [
            self.STATUS_FILE,
            self.STDOUT,
            self.STDERR,
            f'logs/{tag}.log',
            f'results/{tag}_train.txt',
            f'{RUN_NAME}.model',
            f'{RUN_NAME}_stagetwo.model',
            f'{RUN_NAME}_compiled.model',
            f'{RUN_NAME}_stagetwo_compiled.model',
        ]
        return calcinfo


# ----------------------------------------------------------------------------------------------------------
# parsing

_HEADER_KEYS = {
    'RMSE E / meV / atom': 'rmse_e_per_atom_meV',
    'RMSE F / meV / A': 'rmse_f_meV_per_A',
    'relative F RMSE %': 'rel_rmse_f_percent',
    'MAE E / meV / atom': 'mae_e_per_atom_meV',
    'MAE F / meV / A': 'mae_f_meV_per_A',
    'relative F MAE %': 'rel_mae_f_percent',
    'RMSE E / meV': 'rmse_e_meV',
    'MAE E / meV': 'mae_e_meV',
    'RMSE Stress / meV / A^3': 'rmse_stress_meV_per_A3',
    'MAE Stress / meV / A^3': 'mae_stress_meV_per_A3',
}


def _slug(header: str) -> str:
    if header in _HEADER_KEYS:
        return _HEADER_KEYS[header]
    return re.sub(r'[^0-9a-zA-Z]+', '_', header.replace('%', 'percent')).strip('_').lower()


def parse_error_tables(log_text: str) -> list[dict]:
    """Return the error tables MACE prints at the end, in order, as ``{'kind', 'rows': {set: {metric: value}}}``.

    ``kind`` is ``train_valid`` or ``test``; set names lose MACE's ``_Default`` head suffix. MACE prints one
    pair of tables per model it evaluates (stage one, then stage two when swa is on).
    """
    tables = []
    lines = log_text.splitlines()
    for index, line in enumerate(lines):
        match = re.search(r'Error-table on (TRAIN and VALID|TEST):', line)
        if not match:
            continue
        kind = 'train_valid' if match.group(1) == 'TRAIN and VALID' else 'test'
        rows, header = {}, None
        for row in lines[index + 1 :]:
            if row.startswith('+'):
                continue
            if not row.startswith('|'):
                break
            cells = [cell.strip() for cell in row.strip().strip('|').split('|')]
            if header is None:
                header = [_slug(cell) for cell in cells]
                continue
            name = re.sub(r'_Default$', '', cells[0])
            values = {}
            for key, cell in zip(header[1:], cells[1:]):
                try:
                    values[key] = float(cell)
                except ValueError:
                    values[key] = cell
            rows[name] = values
        tables.append({'kind': kind, 'rows': rows})
    return tables


def parse_training_curve(results_text: str) -> dict[str, np.ndarray]:
    """Return per-epoch validation errors from MACE's results file (JSON lines; eV, eV/Å).

    ``epoch`` -1 is MACE's evaluation before the first step; ``train_seconds`` sums the optimisation steps
    of each epoch.
    """
    evals, train_time = [], {}
    for line in results_text.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        epoch = -1 if entry.get('epoch') is None else int(entry['epoch'])
        if entry.get('mode') == 'eval':
            evals.append((epoch, entry))
        elif entry.get('mode') == 'opt':
            train_time[epoch] = train_time.get(epoch, 0.0) + float(entry.get('time', 0.0))
    if not evals:
        return {}
    keys = [
        key
        for key, value in evals[0][1].items()
        if isinstance(value, (int, float)) and key not in ('epoch',) and all(key in e for _, e in evals)
    ]
    curve = {'epoch': np.array([epoch for epoch, _ in evals], dtype=int)}
    for key in keys:
        curve[key] = np.array([float(entry[key]) for _, entry in evals])
    curve['train_seconds'] = np.array([train_time.get(epoch, 0.0) for epoch, _ in evals])
    return curve


class MaceTrainParser(Parser):
    """Turn a finished training job into the model, its metrics and the training curve (or an exit code)."""

    def _read(self, name: str, mode: str = 'r'):
        try:
            return self.retrieved.base.repository.get_object_content(name, mode=mode)
        except (FileNotFoundError, OSError):
            return None

    def parse(self, **kwargs):
        """Check status, NaN, wall time, divergence, in that order; then store the model and metrics."""
        calc = self.node.process_class
        seed = self.node.inputs.seed.value
        tag = f'{RUN_NAME}_run-{seed}'
        status_text = self._read(calc.STATUS_FILE)
        if status_text is None:
            return self.exit_codes.ERROR_NO_STATUS
        status = json.loads(status_text)
        log_text = self._read(f'{tag}.log') or ''  # AiiDA retrieves `logs/x` as `x`
        results_text = self._read(f'{tag}_train.txt') or ''

        curve = parse_training_curve(results_text)
        if curve:
            array = orm.ArrayData()
            for key, value in curve.items():
                array.set_array(key, value)
            self.out('training_curve', array)
            finite = np.isfinite(curve['loss'])
            for key in ('rmse_f', 'rmse_e_per_atom'):
                if key in curve:
                    finite &= np.isfinite(curve[key])
            if not finite.all():
                epoch = int(curve['epoch'][np.argmin(finite)])
                return self.exit_codes.ERROR_NAN_LOSS.format(epoch=epoch)
        if re.search(r'loss=\s*(nan|inf)', log_text, flags=re.IGNORECASE):
            return self.exit_codes.ERROR_NAN_LOSS.format(epoch='(see log)')
        if status.get('timed_out') or status.get('terminated_by_signal'):
            return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(elapsed=status.get('elapsed_seconds', 0.0))
        if status.get('returncode') != 0:
            stderr = (self._read(calc.STDERR) or '').strip().splitlines()
            error = next((line for line in reversed(stderr) if line.strip()), 'no error message')
            return self.exit_codes.ERROR_MACE_FAILED.format(code=status.get('returncode'), error=error)
        if curve and 'rmse_f' in curve:
            trained = curve['rmse_f'][curve['epoch'] >= 0]
            if len(trained) and trained.min() > 0 and trained[-1] / trained.min() > DIVERGENCE_RATIO:
                ratio = trained[-1] / trained.min()
                return self.exit_codes.ERROR_DIVERGENCE.format(final=float(trained[-1]), ratio=float(ratio))

        hyperparameters = {**default_hyperparameters(), **self.node.inputs.hyperparameters.get_dict()}
        stage_two = bool(hyperparameters['swa'])
        model_name = f'{RUN_NAME}_stagetwo.model' if stage_two else f'{RUN_NAME}.model'
        content = self._read(model_name, mode='rb')
        if content is None:
            return self.exit_codes.ERROR_MISSING_OUTPUT.format(what=f'the model file {model_name}')
        train = self.node.inputs.train
        provenance = {
            **hyperparameters,
            'seed': seed,
            'dtype': self.node.inputs.dtype.value,
            'E0s': {symbol: train.isolated_atom_energies[symbol] for symbol in train.elements},
            'stage': 'stage_two' if stage_two else 'stage_one',
            'parent_model': self.node.inputs.parent_model.uuid if 'parent_model' in self.node.inputs else None,
        }
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / 'model.model'
            path.write_bytes(content)
            self.out('model', MaceModelData(path, hyperparameters=provenance))
        compiled = self._read(model_name.replace('.model', '_compiled.model'), mode='rb')
        if compiled is not None:
            self.out('compiled_model', orm.SinglefileData(io.BytesIO(compiled), filename='compiled.model'))
        self.out('metrics', orm.Dict(self._metrics(log_text, curve, status)))
        return None

    @staticmethod
    def _metrics(log_text: str, curve: dict, status: dict) -> dict:
        tables = parse_error_tables(log_text)
        train_valid = [table['rows'] for table in tables if table['kind'] == 'train_valid']
        tests = [table['rows'] for table in tables if table['kind'] == 'test']
        metrics: dict = {'units': 'meV/atom for energies, meV/Å for forces, % for relative errors'}
        if train_valid:
            metrics.update(train_valid[-1])
            if len(train_valid) > 1:
                metrics['stage_one'] = train_valid[0]
        if tests:
            metrics['test'] = tests[-1]
        if curve:
            trained = curve['epoch'] >= 0
            metrics['epochs'] = int(trained.sum())
            seconds = curve['train_seconds'][trained]
            metrics['median_train_seconds_per_epoch'] = float(np.median(seconds)) if len(seconds) else None
            if 'rmse_f' in curve and trained.any():
                metrics['best_valid_rmse_f_eV_per_A'] = float(curve['rmse_f'][trained].min())
        metrics['elapsed_seconds'] = status.get('elapsed_seconds')
        metrics['cuequivariance_available'] = bool(status.get('cuequivariance_available'))
        metrics['mliap_export'] = (
            'possible (mace_create_lammps_model --format mliap)'
            if status.get('cuequivariance_available')
            else 'not made: cuequivariance is not importable on the remote machine'
        )
        return {key: value for key, value in metrics.items() if not (isinstance(value, float) and math.isnan(value))}
