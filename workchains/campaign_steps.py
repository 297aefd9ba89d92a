"""What the cluster and the temperature campaigns do the same way: labelling, (re)training, the MD builder, records.

Both campaigns read their settings once in ``setup`` into ``ctx.settings``, count their rounds in the context (the
cluster campaign's ``cycle``, the temperature campaign's ``step``) and keep the processes that did a round's work
by role (``ctx.cycle_roles`` / ``ctx.roles``). :class:`CampaignSteps` holds the steps and builders written once for
both; each work chain names its round and its roles with ``_round`` and ``_roles``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiida import orm
from aiida.engine import ToContext

from aiida_mofal.data import DatasetData

from .campaign_inputs import label_overrides
from .label import LabelWorkChain
from .md import MdBaseWorkChain
from .train import TrainWorkChain

__all__ = ('CampaignSteps', 'failed_labels', 'wall_seconds', 'with_device')


def with_device(settings: Mapping, resource: Mapping) -> dict:
    """Return ``settings`` with ``device: cuda`` when the step's resource asks for GPUs (else as given)."""
    from aiida_mofal.remote.resources import device_for

    return {**settings, 'device': device_for(resource['gpus'])} if resource.get('gpus') else dict(settings)


def failed_labels(node) -> int:
    """How many structures a labelling work chain could not label (its ``failed`` output)."""
    return len(node.outputs.failed.get_dict()) if 'failed' in node.outputs else 0


def wall_seconds(nodes: Iterable) -> float | None:
    """Wall time from the first process's creation to the last one's last change (None for no process)."""
    nodes = [node for node in nodes if node is not None]
    return (max(n.mtime for n in nodes) - min(n.ctime for n in nodes)).total_seconds() if nodes else None


class CampaignSteps:
    """Steps and builders shared by ``ClusterCampaignWorkChain`` and ``TemperatureCampaignWorkChain`` (a mixin)."""

    #: the name of one round: the context key of its index, the prefix of its link labels, the exit-code field
    _round = 'cycle'
    #: the context key of the processes that did the round's work (role → node), kept for the round's record
    _roles = 'cycle_roles'

    @classmethod
    def define_step_exit_codes(cls, spec, initial: str, round_phrase: str) -> None:
        """Declare the exit codes of the steps written here (same status, label and meaning in both campaigns).

        ``initial`` names the campaign's first labelled set, ``round_phrase`` where in the campaign a training
        failed (its ``{cycle}``/``{step}`` field is :attr:`_round`).
        """
        spec.exit_code(410, 'ERROR_INITIAL_LABELLING', message=f'{initial} could not be labelled: {{reason}}')
        spec.exit_code(420, 'ERROR_TRAINING', message=f'training failed {round_phrase}: {{reason}}')

    @classmethod
    def _builder_of(cls, inputs: Mapping):
        """Return a builder of this work chain filled with checked ``inputs``, labelled with the campaign's name."""
        builder = cls.get_builder()
        for key, value in inputs.items():
            builder[key] = value
        builder.metadata.label = builder.settings['name']
        return builder

    def _read_settings(self) -> int:
        """Read the settings once into ``ctx.settings``; return the steps of one MD run (or the protocol's length)."""
        from aiida_mofal.md.protocol import load_md_settings, total_steps

        self.ctx.settings = self.inputs.settings.get_dict()
        explore = self.ctx.settings['explore']
        return explore['steps'] or total_steps(load_md_settings(explore['protocol'], explore['overrides']))

    def _options(self, step: str) -> dict | None:
        """Return the CalcJob options of ``resources.<step>`` (None: the builder's defaults)."""
        return self.ctx.settings['resources'][step]['options'] or None

    def _label_builder(self, structures: DatasetData, link_label: str, **kwargs):
        """Return a labelling work chain of ``structures`` with the campaign's label protocol and CP2K options."""
        settings = self.ctx.settings
        builder = LabelWorkChain.get_builder_from_protocol(
            self.inputs.cp2k_code,
            structures,
            protocol=settings['label']['protocol'],
            overrides=label_overrides(settings),
            options=self._options('cp2k'),
            **kwargs,
        )
        builder.metadata.call_link_label = link_label
        return builder

    def _explore_builder(self, structure, overrides: Mapping, link_label: str, walks: list[dict] | None = None):
        """Return an MD work chain of ``structure``: the current model, the explore protocol, the MD options."""
        explore = self.ctx.settings['explore']
        builder = MdBaseWorkChain.get_builder_from_protocol(
            self.inputs.md_code,
            structure,
            self.ctx.model,
            protocol=explore['protocol'],
            overrides=overrides,
            engine=explore['engine'],
            options=self._options('md'),
            walks=walks,
        )
        builder.metadata.call_link_label = link_label
        return builder

    def _initial_labels_failed(self, node):
        """Return the exit code when the first labelling gave no data set or no isolated-atom energies, else None."""
        if 'dataset' not in node.outputs:
            return self.exit_codes.ERROR_INITIAL_LABELLING.format(reason=node.exit_message or 'no data set')
        if node.exit_status == LabelWorkChain.exit_codes.ERROR_ISOLATED_ATOMS_FAILED.status:
            return self.exit_codes.ERROR_INITIAL_LABELLING.format(reason=node.exit_message)
        return None

    def train(self):
        """Train the first model, or retrain: fine-tune from the previous model unless ``train.fine_tune`` is false."""
        settings = self.ctx.settings
        index = self.ctx[self._round]
        parent = self.ctx.model if (self.ctx.model is not None and settings['train']['fine_tune']) else None
        builder = TrainWorkChain.get_builder_from_protocol(
            self.inputs.train_code,
            self.ctx.training,
            test=self.ctx.test,
            protocol=settings['train']['protocol'],
            overrides=with_device(settings['train']['overrides'], settings['resources']['train']),
            parent_model=parent,
            seed=settings['initial']['seed'] + index,
            options=self._options('train'),
        )
        builder.metadata.call_link_label = f'{self._round}_{index}_train'
        return ToContext(training_run=self.submit(builder))

    def inspect_training(self):
        """Keep the new model."""
        node = self.ctx.training_run
        if not node.is_finished_ok or 'model' not in node.outputs:
            reason = node.exit_message or 'no model'
            return self.exit_codes.ERROR_TRAINING.format(**{self._round: self.ctx[self._round]}, reason=reason)
        self.ctx.model = node.outputs.model
        self.ctx[self._roles]['train'] = node
        return None

    def _record_inputs(self, metrics, processes: Mapping) -> dict:
        """Return what every round's record calcfunction takes: its index, the training set, errors, the roles."""
        roles = self.ctx[self._roles]
        return {
            self._round: orm.Int(self.ctx[self._round]),
            'training': self.ctx.training,
            'metrics': metrics,
            'evaluated_on': orm.Str('test' if self.ctx.test is not None else 'training'),
            'processes': orm.Dict(
                {**processes, 'processes': {role: node.uuid for role, node in sorted(roles.items())}}
            ),
        }

    def _attach_results(self, **outputs) -> None:
        """Attach the last model, the final training set, ``outputs`` and the test set (when there is one)."""
        for label, node in {'model': self.ctx.model, 'dataset': self.ctx.training, **outputs}.items():
            self.out(label, node)
        if self.ctx.test is not None:
            self.out('test_set', self.ctx.test)
