"""``mofal.train``: a MACE training that recovers from the failures trainings really have.

* Out of wall time: the job stopped cleanly and left ``checkpoints/`` in its remote folder; the next job
  copies them and continues with ``--restart_latest`` (same seed, as the checkpoint name contains it).
* NaN loss or divergence: first the learning rates are divided by ten; if that fails too, a different
  seed is tried with the lower rates; then the work chain gives up with ``ERROR_TRAINING_UNSTABLE``
  rather than burn GPU hours. A NaN run's checkpoints are never reused (the optimiser state would bring
  the old learning rate back).

When no validation set is given, the training set is split by the :func:`split_dataset` calcfunction
(seeded), so the split is part of the provenance graph.

A committee (query-by-committee, as in DP-GEN or aiida-trains-pot) is ``n`` independent work chains
that differ only in the seed: :func:`get_committee_builders` returns their builders.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiida import orm
from aiida.engine import ProcessHandlerReport

from aiida_mofal.calculations.mace_train import MaceTrainCalculation, split_dataset
from aiida_mofal.data.dataset import DatasetData
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.mlp.training import default_hyperparameters
from aiida_mofal.protocols import load_protocol

from .restart import RestartWorkChain, handler_for

__all__ = ['LR_REDUCTION', 'TrainWorkChain', 'get_committee_builders']

LR_REDUCTION = 0.1  # factor applied to lr and swa_lr after a NaN loss or a divergence
SEED_OFFSET = 1000  # new seed = seed + SEED_OFFSET when a lower learning rate was not enough


class TrainWorkChain(RestartWorkChain):
    """Run ``mofal.mace.train`` until it gives a model, restarting it where the failure allows."""

    _process_class = MaceTrainCalculation
    _inputs_namespace = 'mace'

    @classmethod
    def define(cls, spec):
        """Define the inputs (the calculation's, under ``mace``), outline, outputs and exit codes."""
        super().define(spec)
        spec.inputs['mace']['validation'].required = False
        spec.input(
            'validation_fraction',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.1),
            help='Fraction of the training set split off for validation when `mace.validation` is not given.',
        )
        spec.expose_outputs(MaceTrainCalculation)
        spec.exit_code(
            410,
            'ERROR_TRAINING_UNSTABLE',
            message='The training gave NaN or diverged even with a ten times lower learning rate and a new seed; '
            'check the labels (outliers, units) and the E0s.',
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        train: DatasetData,
        validation: DatasetData | None = None,
        test: DatasetData | None = None,
        protocol: str | None = 'tiny',
        overrides: Mapping | None = None,
        parent_model: MaceModelData | None = None,
        seed: int | None = None,
        options: Mapping | None = None,
    ):
        """Return a builder filled from a protocol of ``protocols/mace.yaml``.

        :param overrides: nested dict of protocol keys to change, e.g. ``{'hyperparameters': {'lr': 0.005}}``;
            an unknown key is an error.
        :param options: extra ``metadata.options`` of the calculation, e.g. ``{'queue_name': 'gpu',
            'custom_scheduler_commands': '#SBATCH --gres=gpu:1'}``.
        """
        inputs = load_protocol('mace', protocol, overrides)
        calculation = inputs['calculation']
        builder = cls.get_builder()
        builder.mace.code = code
        builder.mace.train = train
        if validation is not None:
            builder.mace.validation = validation
        if test is not None:
            builder.mace.test = test
        if parent_model is not None:
            builder.mace.parent_model = parent_model
        builder.mace.hyperparameters = orm.Dict(inputs['hyperparameters'])
        builder.mace.seed = orm.Int(inputs['seed'] if seed is None else seed)
        builder.mace.dtype = orm.Str(inputs['dtype'])
        builder.mace.device = orm.Str(inputs['device'])
        builder.mace.metadata.options = {
            'resources': dict(calculation['resources']),
            'max_wallclock_seconds': int(calculation['max_wallclock_seconds']),
            'walltime_fraction': float(calculation['walltime_fraction']),
            **dict(options or {}),
        }
        builder.max_iterations = orm.Int(calculation['max_iterations'])
        builder.validation_fraction = orm.Float(inputs['validation_fraction'])
        builder.metadata.label = f'mace-train-{inputs["protocol"]}'
        return builder

    def setup(self):
        """Prepare the calculation inputs; split the training set when there is no validation set."""
        super().setup()
        self.ctx.unstable_attempts = 0
        if 'validation' not in self.ctx.inputs:
            split = split_dataset(self.ctx.inputs.train, self.inputs.validation_fraction, self.ctx.inputs.seed)
            self.ctx.inputs.train = split['train']
            self.ctx.inputs.validation = split['validation']
            self.report(
                f'split the training set into {split["train"].count} training and '
                f'{split["validation"].count} validation configurations'
            )

    @handler_for(MaceTrainCalculation, 'ERROR_OUT_OF_WALLTIME', priority=600)
    def handle_out_of_walltime(self, node):
        """ERROR_OUT_OF_WALLTIME: continue from the checkpoints in the remote folder (same seed and settings)."""
        self.ctx.inputs.restart_folder = node.outputs.remote_folder
        self.report(f'{node.process_label}<{node.pk}> ran out of wall time; continuing from its checkpoints')
        return ProcessHandlerReport(do_break=True)

    @handler_for(MaceTrainCalculation, 'ERROR_NAN_LOSS', 'ERROR_DIVERGENCE', priority=500)
    def handle_unstable_training(self, node):
        """ERROR_NAN_LOSS / ERROR_DIVERGENCE: lower the learning rates, then also change the seed, then give up."""
        self.ctx.unstable_attempts += 1
        self.ctx.inputs.pop('restart_folder', None)
        if self.ctx.unstable_attempts == 1:
            hyperparameters = self.ctx.inputs.hyperparameters.get_dict()
            defaults = default_hyperparameters()
            for key in ('lr', 'swa_lr'):
                hyperparameters[key] = hyperparameters.get(key, defaults[key]) * LR_REDUCTION
            self.ctx.inputs.hyperparameters = orm.Dict(hyperparameters)
            self.report(
                f'{node.process_label}<{node.pk}> failed ({node.exit_message}); '
                f'retrying with lr {hyperparameters["lr"]:.3g}, swa_lr {hyperparameters["swa_lr"]:.3g}'
            )
            return ProcessHandlerReport(do_break=True)
        if self.ctx.unstable_attempts == 2:
            self.ctx.inputs.seed = orm.Int(self.ctx.inputs.seed.value + SEED_OFFSET)
            self.report(
                f'{node.process_label}<{node.pk}> failed again ({node.exit_message}); '
                f'retrying with seed {self.ctx.inputs.seed.value}'
            )
            return ProcessHandlerReport(do_break=True)
        self.report(f'{node.process_label}<{node.pk}> failed a third time ({node.exit_message}); giving up')
        return ProcessHandlerReport(do_break=True, exit_code=self.exit_codes.ERROR_TRAINING_UNSTABLE)


def get_committee_builders(code: orm.AbstractCode, train: DatasetData, size: int, seed: int = 123, **kwargs) -> list:
    """Return ``size`` builders of :class:`TrainWorkChain` that differ only in the seed (``seed``, ``seed + 1``...).

    The same validation split is used by all members when ``validation`` is given; otherwise each member
    splits with its own seed (which adds data diversity to the committee). ``kwargs`` go to
    :meth:`TrainWorkChain.get_builder_from_protocol`.
    """
    if size < 1:
        raise ValueError(f'a committee needs at least one member, got size={size}.')
    builders = []
    for index in range(size):
        builder = TrainWorkChain.get_builder_from_protocol(code, train, seed=seed + index, **kwargs)
        builder.metadata.label = f'{builder.metadata.label}-committee-{index}'
        builders.append(builder)
    return builders
