"""The cluster-based active-learning campaign (the cluster paper's Figure 2A) as one work chain."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_

from aiida_mofal.calculations.campaign import initial_dataset, record_cycle, scan_and_extract, split_by_set
from aiida_mofal.calculations.datasets import merge_datasets
from aiida_mofal.calculations.density import fit_density_model
from aiida_mofal.calculations.mace_evaluate import evaluate_model
from aiida_mofal.campaign.config import CampaignConfig
from aiida_mofal.data import DatasetData
from aiida_mofal.protocols import load_protocol

from .label import LabelWorkChain
from .md import MdBaseWorkChain
from .train import TrainWorkChain

__all__ = ('ClusterCampaignWorkChain',)


def validate_config(value: orm.Dict, _) -> str | None:
    """Refuse campaign settings that are not a valid campaign file (see ``aiida_mofal.campaign.config``)."""
    try:
        CampaignConfig.model_validate(value.get_dict())
    except ValueError as error:
        return f'campaign settings: {error}'
    return None


class ClusterCampaignWorkChain(WorkChain):
    """The cluster paper's active-learning cycle, from a campaign file.

    Initialise (label, train model₀, fit the density model), then cycle: explore → scan → extract → label →
    merge → retrain → refit → evaluate, until ``max_cycles``, the unknown-atom fraction or the MAE_pk target.
    """

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.input('config', valid_type=orm.Dict, validator=validate_config, help='The validated campaign file.')
        spec.input_namespace('targets', valid_type=orm.StructureData, dynamic=True, help='Target structures by name.')
        spec.input('cp2k_code', valid_type=orm.AbstractCode)
        spec.input('train_code', valid_type=orm.AbstractCode)
        spec.input('md_code', valid_type=orm.AbstractCode)
        spec.outline(
            cls.setup,
            cls.initialise,
            cls.inspect_initial_labels,
            cls.train,
            cls.inspect_training,
            while_(cls.should_continue)(
                cls.explore,
                cls.scan,
                if_(cls.has_clusters)(
                    cls.label,
                    cls.merge,
                    cls.train,
                    cls.inspect_training,
                ).else_(
                    cls.nothing_unknown,
                ),
            ),
            cls.finalise,
        )
        spec.output('model', valid_type=orm.Data, help='The last model (mofal.mace_model).')
        spec.output('density_model', valid_type=orm.Data, help='Its density model.')
        spec.output('dataset', valid_type=DatasetData, help='The final training set.')
        spec.output('test_set', valid_type=DatasetData, required=False)
        spec.output_namespace('cycles', valid_type=orm.Dict, dynamic=True, help='One record per cycle.')
        spec.exit_code(410, 'ERROR_INITIAL_LABELLING', message='the initial data set could not be labelled: {reason}')
        spec.exit_code(420, 'ERROR_TRAINING', message='training failed in cycle {cycle}: {reason}')
        spec.exit_code(430, 'ERROR_EXPLORATION', message='every MD walk of cycle {cycle} failed')
        spec.exit_code(440, 'ERROR_CLUSTER_LABELLING', message='no cluster of cycle {cycle} could be labelled')

    # ---------------------------------------------------------------------------------------------- helpers
    @property
    def config(self) -> dict:
        """The campaign settings as a plain dict."""
        return self.inputs.config.get_dict()

    def _evaluate_and_record(self, scan: orm.Dict | None = None) -> None:
        evaluation_set = self.ctx.test if self.ctx.test is not None else self.ctx.training
        evaluation = evaluate_model(self.ctx.model, evaluation_set)
        inputs = {
            'cycle': orm.Int(self.ctx.cycle),
            'training': self.ctx.training,
            'metrics': evaluation['metrics'],
            'evaluated_on': orm.Str('test' if self.ctx.test is not None else 'training'),
        }
        if scan is not None:
            inputs['scan'] = scan
        record = record_cycle(**inputs)
        self.ctx.records.append(record)
        self.out(f'cycles.cycle_{self.ctx.cycle}', record)
        row = record.get_dict()
        self.report(
            f'cycle {self.ctx.cycle}: {row["training_configurations"]} configurations, '
            f'MAE_p{row["percentile_k"]} {row["force_mae_pk_ev_per_a"]} eV/Å, unknown {row.get("unknown_fraction")}'
        )

    # ---------------------------------------------------------------------------------------------- steps
    def setup(self):
        """Start at cycle 0 with no model."""
        self.ctx.cycle = 0
        self.ctx.records = []
        self.ctx.model = None
        self.ctx.test = None
        self.ctx.stop_reason = None
        self.ctx.last_scan = None

    def initialise(self):
        """Build the initial configurations of every target (calcfunction) and label them in one work chain."""
        config = self.config
        initial = {**config['initial'], 'mantle_depth': config['extract']['mantle_depth']}
        initial['vacuum'] = config['extract']['vacuum']
        sets = {}
        for name, structure in sorted(self.inputs.targets.items()):
            sets[name] = initial_dataset(structure, orm.Dict({**initial, 'target': name}))
        source = merge_datasets(**sets) if len(sets) > 1 else next(iter(sets.values()))
        builder = LabelWorkChain.get_builder_from_protocol(
            self.inputs.cp2k_code, source, protocol=config['label']['protocol'], overrides=self._label_overrides()
        )
        builder.metadata.call_link_label = 'initial_label'
        return ToContext(initial_label=self.submit(builder))

    def _label_overrides(self) -> dict:
        config = self.config
        overrides = dict(config['label']['overrides'])
        options = config['resources']['cp2k']['options']
        if options:
            calculation = dict(overrides.get('calculation', {}))
            for key, value in options.items():
                if key in ('resources', 'max_wallclock_seconds'):
                    calculation[key] = value
                else:  # queue, account, scheduler commands, ...
                    calculation.setdefault('options', {})[key] = value
            overrides['calculation'] = calculation
        return overrides

    def inspect_initial_labels(self):
        """Split the labelled initial set into training and test sets; keep the E0s for every later label."""
        node = self.ctx.initial_label
        if 'dataset' not in node.outputs:
            return self.exit_codes.ERROR_INITIAL_LABELLING.format(reason=node.exit_message or 'no data set')
        if node.exit_status == LabelWorkChain.exit_codes.ERROR_ISOLATED_ATOMS_FAILED.status:
            return self.exit_codes.ERROR_INITIAL_LABELLING.format(reason=node.exit_message)
        parts = split_by_set(node.outputs.dataset)
        self.ctx.training = parts['train']
        self.ctx.test = parts.get('test')
        self.ctx.e0s = node.outputs.isolated_atom_energies
        return None

    def train(self):
        """Train (cycle 0) or retrain: fine-tune from the previous model unless the campaign says otherwise."""
        config = self.config
        parent = self.ctx.model if (self.ctx.model is not None and config['train']['fine_tune']) else None
        builder = TrainWorkChain.get_builder_from_protocol(
            self.inputs.train_code,
            self.ctx.training,
            test=self.ctx.test,
            protocol=config['train']['protocol'],
            overrides=config['train']['overrides'],
            parent_model=parent,
            seed=config['initial']['seed'] + self.ctx.cycle,
            options=config['resources']['train']['options'] or None,
        )
        builder.metadata.call_link_label = f'cycle_{self.ctx.cycle}_train'
        return ToContext(training_run=self.submit(builder))

    def inspect_training(self):
        """Keep the new model, refit its density model, evaluate it and record the cycle."""
        node = self.ctx.training_run
        if not node.is_finished_ok or 'model' not in node.outputs:
            return self.exit_codes.ERROR_TRAINING.format(cycle=self.ctx.cycle, reason=node.exit_message or 'no model')
        self.ctx.model = node.outputs.model
        settings = self.config['density']['settings']
        self.ctx.density = fit_density_model(self.ctx.model, self.ctx.training, orm.Dict(settings))
        self._evaluate_and_record(self.ctx.last_scan)
        return None

    def should_continue(self) -> bool:
        """Stop on ``max_cycles``, the unknown-fraction target or the MAE_pk target."""
        stop = self.config['stop']
        row = self.ctx.records[-1].get_dict()
        if self.ctx.stop_reason:
            return False
        if stop['mae_p95'] is not None and (row['force_mae_pk_ev_per_a'] or np.inf) < stop['mae_p95']:
            self.ctx.stop_reason = f'MAE_p{row["percentile_k"]} below {stop["mae_p95"]} eV/Å'
        elif (
            stop['unknown_fraction'] is not None
            and row.get('unknown_fraction') is not None
            and row['unknown_fraction'] < stop['unknown_fraction']
        ):
            self.ctx.stop_reason = f'unknown fraction below {stop["unknown_fraction"]}'
        elif self.ctx.cycle >= stop['max_cycles']:
            self.ctx.stop_reason = f'{stop["max_cycles"]} cycles done'
        if self.ctx.stop_reason:
            self.report(f'stopping: {self.ctx.stop_reason}')
            return False
        self.ctx.cycle += 1
        return True

    def explore(self):
        """Submit the MD walks of every target (pressures drawn uniformly in the configured range, seeded)."""
        config = self.config
        explore = config['explore']
        rng = np.random.default_rng([config['initial']['seed'], self.ctx.cycle])
        protocol_steps = sum(stage['steps'] for stage in load_protocol('md', explore['protocol'])['schedule'])
        walks = {}
        for name, structure in sorted(self.inputs.targets.items()):
            for walk in range(explore['walks']):
                stage = {
                    'steps': explore['steps'] or protocol_steps,
                    'temperature': explore['temperature'],
                    'pressure': float(rng.uniform(*explore['pressure_range'])),
                }
                overrides = {**explore['overrides'], 'seed': int(rng.integers(2**31)), 'schedule': [stage]}
                builder = MdBaseWorkChain.get_builder_from_protocol(
                    self.inputs.md_code,
                    structure,
                    self.ctx.model,
                    protocol=explore['protocol'],
                    overrides=overrides,
                    engine=explore['engine'],
                    options=config['resources']['md']['options'] or None,
                )
                label = f'cycle_{self.ctx.cycle}_explore_{name}_{walk}'
                builder.metadata.call_link_label = label
                walks[label] = self.submit(builder)
        return ToContext(**walks)

    def scan(self):
        """Score every atom of the walks' frames and cut clusters around the unknown ones (one calcfunction)."""
        prefix = f'cycle_{self.ctx.cycle}_explore_'
        trajectories = {
            key[len(prefix) :]: self.ctx[key].outputs.trajectory
            for key in self.ctx
            if key.startswith(prefix) and 'trajectory' in self.ctx[key].outputs
        }
        if not trajectories:
            return self.exit_codes.ERROR_EXPLORATION.format(cycle=self.ctx.cycle)
        extract = self.config['extract']
        settings = {**extract, 'cycle': self.ctx.cycle}
        result = scan_and_extract(self.ctx.model, self.ctx.density, orm.Dict(settings), **trajectories)
        self.ctx.last_scan = result['scan']
        self.ctx.clusters = result.get('clusters')
        scan = result['scan'].get_dict()
        self.report(
            f'cycle {self.ctx.cycle}: {scan["unknown_atoms"]} of {scan["atoms"]} atoms unknown '
            f'({scan["unknown_fraction"]:.4f}) in {scan["frames"]} frames; {scan["clusters"]} clusters to label'
        )
        return None

    def has_clusters(self) -> bool:
        """Whether the scan found anything to learn."""
        return self.ctx.clusters is not None

    def nothing_unknown(self):
        """No unknown atom in any frame: the model knows what MD shows it; record the cycle and stop."""
        self._evaluate_and_record(self.ctx.last_scan)
        self.ctx.stop_reason = 'no unknown atom in the explored frames'

    def label(self):
        """Label the clusters with the campaign's protocol and the initial E0s."""
        builder = LabelWorkChain.get_builder_from_protocol(
            self.inputs.cp2k_code,
            self.ctx.clusters,
            protocol=self.config['label']['protocol'],
            overrides=self._label_overrides(),
            isolated_atom_energies=self.ctx.e0s,
        )
        builder.metadata.call_link_label = f'cycle_{self.ctx.cycle}_label'
        return ToContext(cluster_label=self.submit(builder))

    def merge(self):
        """Add the labelled clusters to the training set (clusters that failed are reported, not added)."""
        node = self.ctx.cluster_label
        if 'dataset' not in node.outputs:
            return self.exit_codes.ERROR_CLUSTER_LABELLING.format(cycle=self.ctx.cycle)
        if 'failed' in node.outputs:
            self.report(f'cycle {self.ctx.cycle}: {len(node.outputs.failed.get_dict())} cluster(s) not labelled')
        self.ctx.training = merge_datasets(previous=self.ctx.training, new=node.outputs.dataset)
        return None

    def finalise(self):
        """Attach the final model, density model and data sets."""
        self.out('model', self.ctx.model)
        self.out('density_model', self.ctx.density)
        self.out('dataset', self.ctx.training)
        if self.ctx.test is not None:
            self.out('test_set', self.ctx.test)
        self.report(f'campaign done after cycle {self.ctx.cycle}: {self.ctx.stop_reason}')
