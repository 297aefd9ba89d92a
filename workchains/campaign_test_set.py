"""The test set of a cluster campaign, sampled by MD: the cluster paper's test sets are configurations of MD at 600 K.

One MD walk per target with the first model at ``initial.test_temperature`` (NVT by default, the explore protocol),
a few frames of each walk's second half, labelled once with the campaign's label protocol and isolated-atom energies.
The campaign evaluates every later model on the same labelled frames, so the learning curve compares like with
like. ``initial.test_source: perturbed`` keeps the older test set (rattled, strained cells built with the initial
set) instead.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain

from aiida_mofal.calculations.campaign import md_test_frames
from aiida_mofal.data import DatasetData

from .campaign_inputs import label_overrides, validate_settings
from .label import LabelWorkChain
from .md import MdBaseWorkChain, walk_finished_ok, walk_outputs

__all__ = ('CampaignTestSetWorkChain', 'MdTestSetSteps')


class CampaignTestSetWorkChain(WorkChain):
    """Sample a campaign's test set: MD of every target with ``model`` at the test temperature, then label frames.

    Inputs are the campaign's own (its ``settings``, ``targets`` and codes), so one node of settings says how every
    test frame was made. Output ``dataset``: the labelled test frames (``campaign_set='test'``), and ``frames``:
    the unlabelled ones as chosen.
    """

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.input('settings', valid_type=orm.Dict, validator=validate_settings, help='The campaign settings.')
        spec.input_namespace('targets', valid_type=orm.StructureData, dynamic=True, help='Target structures by name.')
        spec.input('model', valid_type=orm.Data, help='The model that runs the MD (mofal.mace_model).')
        spec.input('isolated_atom_energies', valid_type=orm.Dict, help='E0 per element (eV) of the campaign.')
        spec.input('cp2k_code', valid_type=orm.AbstractCode)
        spec.input('md_code', valid_type=orm.AbstractCode)
        spec.outline(cls.explore, cls.label, cls.results)
        spec.output('dataset', valid_type=DatasetData, help='The labelled test frames.')
        spec.output('frames', valid_type=DatasetData, help='The test frames as chosen from the walks, unlabelled.')
        spec.exit_code(
            410, 'ERROR_TEST_WALKS', message='no test-set MD walk finished ({reason}); lower initial.test_temperature, '
            'or set initial.test_source: perturbed'
        )  # fmt: skip
        spec.exit_code(420, 'ERROR_TEST_LABELS', message='no test frame could be labelled: {reason}')

    def explore(self):
        """One MD job per target: a walk of ``test_steps`` (default: the explore walk) at the test temperature."""
        from aiida_mofal.md.protocol import load_md_settings, total_steps

        settings = self.inputs.settings.get_dict()
        initial, explore = settings['initial'], settings['explore']
        steps = initial['test_steps'] or explore['steps']
        steps = steps or total_steps(load_md_settings(explore['protocol'], explore['overrides']))
        rng = np.random.default_rng([initial['seed'], 600_001])  # apart from every cycle's walks
        jobs = {}
        for name, structure in sorted(self.inputs.targets.items()):
            stage = {'steps': int(steps), 'temperature': initial['test_temperature']}
            if initial['test_ensemble'] == 'npt':
                stage['pressure'] = 0.0
            builder = MdBaseWorkChain.get_builder_from_protocol(
                self.inputs.md_code,
                structure,
                self.inputs.model,
                protocol=explore['protocol'],
                overrides={**explore['overrides'], 'ensemble': initial['test_ensemble']},
                engine=explore['engine'],
                options=settings['resources']['md']['options'] or None,
                walks=[{'seed': int(rng.integers(2**31)), 'schedule': [stage]}],
            )
            if settings['resources']['md'].get('gpus'):
                builder.md.device = orm.Str('cuda')
            builder.metadata.call_link_label = f'test_explore_{name}'
            jobs[f'test_md_{name}'] = self.submit(builder)
        return ToContext(**jobs)

    def label(self):
        """Choose the frames of every walk and label them in one labelling work chain.

        A walk that did not finish (it blew up beyond the MD work chain's fixes) gives the frames it recorded before
        the failure, less the last one (the closest to it), when at least two remain; it is reported.
        """
        settings = self.inputs.settings.get_dict()
        trajectories, targets, usable, failed = {}, {}, {}, []
        for index, name in enumerate(sorted(self.inputs.targets)):
            node, record = self.ctx[f'test_md_{name}'], {'walk': 0}
            outputs, key = walk_outputs(node, record), f'walk_{index}'
            reason = node.exit_message or f'exit status {node.exit_status}'
            if 'trajectory' in outputs and walk_finished_ok(node, record):
                trajectories[key], targets[key] = outputs['trajectory'], name
            elif 'trajectory' in outputs and outputs['trajectory'].num_frames >= 3:
                trajectories[key], targets[key] = outputs['trajectory'], name
                usable[key] = outputs['trajectory'].num_frames - 1
                self.report(f'test-set walk of {name} did not finish ({reason}); its first {usable[key]} frames serve')
            else:
                failed.append(f'{name}: {reason}')
        for line in failed:
            self.report(f'test-set walk of {line}')
        if not trajectories:
            return self.exit_codes.ERROR_TEST_WALKS.format(reason='; '.join(failed))
        frames = md_test_frames(
            orm.Dict({'frames': settings['initial']['test_frames'], 'targets': targets, 'usable': usable}),
            **trajectories,
        )
        self.out('frames', frames)
        builder = LabelWorkChain.get_builder_from_protocol(
            self.inputs.cp2k_code,
            frames,
            protocol=settings['label']['protocol'],
            overrides=label_overrides(settings),
            options=settings['resources']['cp2k']['options'] or None,
            isolated_atom_energies=self.inputs.isolated_atom_energies,
        )
        builder.metadata.call_link_label = 'test_label'
        return ToContext(test_label=self.submit(builder))

    def results(self):
        """Attach the labelled frames (those that failed are reported and left out)."""
        node = self.ctx.test_label
        if 'dataset' not in node.outputs:
            return self.exit_codes.ERROR_TEST_LABELS.format(reason=node.exit_message or 'no data set')
        if 'failed' in node.outputs:
            self.report(f'{len(node.outputs.failed.get_dict())} test frame(s) could not be labelled')
        self.out('dataset', node.outputs.dataset)
        self.report(f'test set: {node.outputs.dataset.count} frames of MD at {self._temperature()} K')
        return None

    def _temperature(self) -> float:
        return self.inputs.settings['initial']['test_temperature']


class MdTestSetSteps:
    """The steps of ``ClusterCampaignWorkChain`` that make its MD-sampled test set (after the first model)."""

    def samples_test_set(self) -> bool:
        """Sample the test set by MD with the first model, unless there is one (perturbed cells, a given set)."""
        initial = self.ctx.settings['initial']
        return self.ctx.test is None and initial['test_source'] == 'md' and initial['test_frames'] > 0

    def sample_test_set(self):
        """MD of every target with the first model at the test temperature; frames labelled once (a child)."""
        builder = CampaignTestSetWorkChain.get_builder()
        builder.settings = self.inputs.settings
        builder.targets = dict(self.inputs.targets)
        builder.model = self.ctx.model
        builder.isolated_atom_energies = self.ctx.e0s
        builder.cp2k_code, builder.md_code = self.inputs.cp2k_code, self.inputs.md_code
        builder.metadata.call_link_label = 'test_set'
        return ToContext(test_set_run=self.submit(builder))

    def inspect_test_set(self):
        """Keep the labelled test frames: every model from model₀ on is evaluated on them."""
        node = self.ctx.test_set_run
        if not node.is_finished_ok or 'dataset' not in node.outputs:
            return self.exit_codes.ERROR_TEST_SET.format(reason=node.exit_message or f'exit status {node.exit_status}')
        self.ctx.test = node.outputs.dataset
        self.ctx.cycle_roles['test_set'] = node
        return None
