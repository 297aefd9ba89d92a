"""What a MACE training job is given: checked hyperparameters, the training set's E0s, ``mace_run_train`` arguments.

Pure Python (no AiiDA): :class:`aiida_mofal.calculations.mace_train.MaceTrainCalculation` calls these before it
submits anything, and the tests call them directly. The data-set checks take any object with the attributes of a
``mofal.dataset`` (``pk``, ``labels``, ``elements``, ``level_of_theory``, ``isolated_atom_energies``).

Choices that a user cannot override through ``hyperparameters`` (the job sets them from its inputs) are listed in
:data:`CONTROLLED_ARGUMENTS`:

* E0s come from the training set's ``isolated_atom_energies`` (same level of theory as the labels). A training
  element without one is refused; ``--E0s=average`` is never used, because on a set with few compositions its
  least-squares fit is meaningless.
* Fine-tuning from a parent model uses ``--foundation_model=parent.model`` with ``--multiheads_finetuning=False``:
  the parent's architecture and weights are the starting point (its ``r_max``, channels and ``max_L`` win over the
  hyperparameters), and all of it is trained on the new data.
* Continuing an interrupted run uses ``--restart_latest`` on the copied ``checkpoints/``; the seed must be the
  same, as the checkpoint name contains it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from aiida_mofal.protocols import read_protocol_file

__all__ = [
    'CONTROLLED_ARGUMENTS',
    'DEVICES',
    'DTYPES',
    'RUN_NAME',
    'TrainingFiles',
    'check_training_inputs',
    'default_hyperparameters',
    'mace_arguments',
    'model_file_name',
    'run_tag',
    'validate_hyperparameters',
    'validate_train_protocol',
]

RUN_NAME = 'mofal'
DTYPES = ('float32', 'float64')
DEVICES = ('cpu', 'cuda', 'mps', 'xpu')
STORE_TRUE = {'swa', 'ema', 'keep_checkpoints'}  # mace_run_train flags without a value

# Arguments the job derives from its inputs; giving them as hyperparameters is an error naming the input.
CONTROLLED_ARGUMENTS = {
    'name': f'fixed to "{RUN_NAME}"',
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


class TrainingFiles:
    """The file names of one training job's working directory (inputs the job writes, outputs MACE writes)."""

    TRAIN = 'train.xyz'
    VALID = 'valid.xyz'
    TEST = 'test.xyz'
    PARENT = 'parent.model'


def run_tag(seed: int) -> str:
    """Return MACE's name of a run: the stem of its log (``logs/``) and results (``results/``) files."""
    return f'{RUN_NAME}_run-{seed}'


def model_file_name(stage_two: bool, compiled: bool = False) -> str:
    """Return the model file MACE writes: stage two when ``swa`` is on, ``_compiled`` for the TorchScript one."""
    stem = f'{RUN_NAME}_stagetwo' if stage_two else RUN_NAME
    return f'{stem}_compiled.model' if compiled else f'{stem}.model'


def default_hyperparameters() -> dict:
    """Return the protocol file's default MACE hyperparameters (what a job uses for keys it is not given)."""
    return read_protocol_file('mace')['default_inputs']['hyperparameters']


def validate_hyperparameters(hyperparameters: Mapping) -> dict:
    """Return ``hyperparameters`` checked against the keys and types of the protocol file's defaults.

    :raises ValueError: for a key the job controls itself, an unknown key (a typo must not pass silently),
        a value of the wrong type, or a stage two that would start after the last epoch.
    """
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


def check_training_inputs(train, validation=None, test=None) -> dict[str, float]:
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
        if name == 'train':
            continue
        if dataset.level_of_theory != train.level_of_theory:
            raise ValueError(
                f'the {name} data set has level of theory {dataset.level_of_theory} but the training set has '
                f'{train.level_of_theory}; errors across levels of theory are meaningless.'
            )
        unseen = sorted(set(dataset.elements) - set(train.elements))
        if unseen:
            raise ValueError(
                f'the {name} data set contains {", ".join(unseen)}, which the training set lacks; the model '
                'cannot learn them. Add configurations with these elements to the training set.'
            )
    energies = train.isolated_atom_energies or {}
    lacking = [symbol for symbol in train.elements if symbol not in energies]
    if lacking:
        example = ', '.join(f'"{symbol}": ...' for symbol in lacking)
        raise ValueError(
            f'the training set (pk {train.pk}) has no isolated-atom energy (E0) for {", ".join(lacking)}. MACE '
            'needs one per element at the same level of theory as the labels; averaging is not used because it '
            'is unreliable on sets with few compositions. Fix: label the free atoms (mofal label does it with '
            f'isolated_atoms: true) and create the data set with isolated_atom_energies={{{example}}} (eV).'
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
        f'--train_file={TrainingFiles.TRAIN}',
        f'--valid_file={TrainingFiles.VALID}',
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
        argv.append(f'--test_file={TrainingFiles.TEST}')
    if has_stress:
        argv += ['--stress_key=REF_stress', '--compute_stress=True', '--loss=stress']
    else:
        argv.append('--loss=weighted')
    if fine_tune:
        argv += [f'--foundation_model={TrainingFiles.PARENT}', '--multiheads_finetuning=False']
    if restart:
        argv.append('--restart_latest')
    for key, value in merged.items():
        if key in STORE_TRUE:
            if value:
                argv.append(f'--{key}')
        else:
            argv.append(f'--{key}={value}')
    return argv


def validate_train_protocol(inputs: Mapping) -> dict:
    """Check a resolved ``mace`` protocol (hyperparameters, ``device``, ``dtype``) before any job is submitted.

    The job's own validators would catch ``device: tpu`` only when the training job is made, after the campaign
    has already labelled its initial set; a campaign file is checked whole before its first CP2K job.

    :returns: the checked hyperparameters.
    :raises ValueError: naming the key, the value and what is allowed.
    """
    for key, choices in (('device', DEVICES), ('dtype', DTYPES)):
        value = inputs.get(key)
        if value is not None and value not in choices:
            raise ValueError(f'{key} {value!r} is not one of {", ".join(choices)}.')
    return validate_hyperparameters(inputs.get('hyperparameters', {}))
