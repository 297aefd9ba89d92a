"""The cluster-based active-learning campaign (the cluster paper's Figure 2A) as one work chain."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, append_, if_, while_
from ase import Atoms

from aiida_mofal.calculations.campaign import (
    clusters_from_scan,
    initial_dataset,
    isolated_energies_of,
    record_cycle,
    scan_and_extract,
    scan_frames,
    split_by_set,
)
from aiida_mofal.calculations.datasets import merge_datasets
from aiida_mofal.data import DatasetData

from .campaign_inference import InferenceSteps
from .campaign_inputs import campaign_inputs, validate_settings
from .campaign_mantle import MANTLE_AUTO_KEYS, MantleSteps, initial_mantle_depth
from .campaign_steps import CampaignSteps, failed_labels, wall_seconds
from .campaign_test_set import MdTestSetSteps
from .md import walk_finished_ok, walk_outputs

__all__ = ('ClusterCampaignWorkChain',)


class ClusterCampaignWorkChain(MantleSteps, MdTestSetSteps, CampaignSteps, InferenceSteps, WorkChain):
    """The cluster paper's active-learning cycle, from a campaign protocol and overrides.

    Initialise (label, train model₀, fit the density model, evaluate), then cycle: explore → scan → extract →
    label → merge → retrain → refit → evaluate, until ``max_cycles``, the unknown-atom fraction or the MAE_pk
    target. With a ``scan_code`` the MACE inference (scan, features for the density fit, evaluation) runs as
    ``mofal.mace.evaluate`` jobs on it; without, as calcfunctions in this process (small systems).
    """

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.input('settings', valid_type=orm.Dict, validator=validate_settings, help='The campaign settings.')
        spec.input_namespace('targets', valid_type=orm.StructureData, dynamic=True, help='Target structures by name.')
        spec.input('cp2k_code', valid_type=orm.AbstractCode)
        spec.input('train_code', valid_type=orm.AbstractCode)
        spec.input('md_code', valid_type=orm.AbstractCode)
        spec.input('scan_code', valid_type=orm.AbstractCode, required=False, help='Python+MACE code for inference.')
        spec.input('initial_dataset', valid_type=DatasetData, required=False, help='Labelled set to start from.')
        spec.input('initial_model', valid_type=orm.Data, required=False, help='First model (mofal.mace_model).')
        spec.input_namespace(
            'test_sets', valid_type=DatasetData, dynamic=True, required=False, help='Extra test sets, by name.'
        )
        spec.outline(
            cls.setup,
            if_(cls.builds_initial_set)(
                cls.initialise,
                cls.inspect_initial_labels,
            ).else_(
                cls.take_initial_dataset,
            ),
            if_(cls.trains_first_model)(
                cls.train,
                cls.inspect_training,
            ).else_(
                cls.take_initial_model,
            ),
            if_(cls.samples_test_set)(
                cls.sample_test_set,
                cls.inspect_test_set,
            ),
            cls.fit_and_evaluate,
            cls.record,
            while_(cls.should_continue)(
                cls.explore,
                cls.scan,
                cls.inspect_scan,
                if_(cls.has_clusters)(
                    cls.label,
                    cls.merge,
                    cls.train,
                    cls.inspect_training,
                    cls.fit_and_evaluate,
                    cls.record,
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
        cls.define_step_exit_codes(spec, initial='the initial data set', round_phrase='in cycle {cycle}')
        spec.exit_code(415, 'ERROR_TEST_SET', message='the test set could not be sampled: {reason}')
        spec.exit_code(430, 'ERROR_EXPLORATION', message='every MD walk of cycle {cycle} failed')
        spec.exit_code(440, 'ERROR_CLUSTER_LABELLING', message='no cluster of cycle {cycle} could be labelled')
        spec.exit_code(450, 'ERROR_INFERENCE', message='the MACE {what} job of cycle {cycle} failed: {reason}')

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: Mapping[str, orm.AbstractCode | str] | None,
        targets: Mapping[str, orm.StructureData | Atoms | str | Path],
        protocol: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        """Return a builder for a campaign on ``targets`` from a protocol of ``protocols/campaign.yaml``.

        Everything that can be checked before a job runs is checked here: the settings (unknown keys, values,
        the label, MACE and MD protocols and overrides they name, the density-model settings), the codes, the
        CalcJob options, and every target against the label protocol.

        :param codes: per step (``cp2k``, ``train``, ``md``, optional ``scan``) a code or its label; a step not
            given takes ``resources.<step>.code`` of the settings. A ``scan`` code switches the MACE inference to
            jobs on it.
        :param targets: name → ``StructureData``, ASE ``Atoms`` or a structure file (one periodic frame).
        :param overrides: the sections of a campaign file (``initial``, ``label``, ..., ``resources``), merged
            over the protocol and validated; see ``docs/guide/campaign.md``.
        :param options: per step, CalcJob options over ``resources.<step>.options`` (queue, account, ...).
        :raises ValueError: naming the key, the target or the code and the fix.
        """
        return cls._builder_of(campaign_inputs(codes, targets, protocol, overrides, options))

    # ---------------------------------------------------------------------------------------------- helpers
    def _record_cycle(self) -> None:
        """Store the cycle's record: errors, sizes, the scan, and which processes did the cycle's work."""
        roles = self.ctx.cycle_roles
        walks = [
            {**record, 'process': node.uuid, 'finished_ok': walk_finished_ok(node, record)}
            for node, record in self._walks()
        ]
        failures = sum(not walk['finished_ok'] for walk in walks)
        clusters_labelled = None
        label = roles.get('label')
        if label is not None and self.ctx.cycle > 0:
            failures += failed_labels(label)
            clusters_labelled = label.outputs.dataset.count if 'dataset' in label.outputs else None
        processes = {
            'walks': walks,
            'evaluation': self.ctx.evaluation.uuid,
            'clusters_labelled': clusters_labelled,
            'failures': failures,
            'wall_seconds': wall_seconds([*roles.values(), *self.ctx.md_jobs]),
        }
        inputs = self._record_inputs(self.ctx.metrics, processes)
        if self.ctx.last_scan is not None:
            inputs['scan'] = self.ctx.last_scan
        inputs.update({f'test_{name}': metrics for name, metrics in (self.ctx.get('test_set_metrics') or {}).items()})
        record = record_cycle(**inputs)
        self.ctx.last_record = record.get_dict()
        self.out(f'cycles.cycle_{self.ctx.cycle}', record)
        row = self.ctx.last_record
        self.report(
            f'cycle {self.ctx.cycle}: {row["training_configurations"]} configurations, '
            f'MAE_p{row["percentile_k"]} {row["force_mae_pk_ev_per_a"]} eV/Å, unknown {row.get("unknown_fraction")}'
        )

    def _walks(self) -> list[tuple[Any, dict]]:
        """Return (MD job, walk record) for every walk of this cycle's exploration."""
        return [(self.ctx.md_jobs[job], record) for job, record in zip(self.ctx.walk_jobs, self.ctx.walk_records)]

    # ---------------------------------------------------------------------------------------------- steps
    def setup(self):
        """Read the settings and the length of an MD walk once; start at cycle 0 with no model."""
        self.ctx.walk_steps = self._read_settings()
        self.ctx.cycle = 0
        self.ctx.model = None
        self.ctx.test = None
        self.ctx.stop_reason = None
        self.ctx.last_scan = None
        self.ctx.last_record = None
        self.ctx.cycle_roles = {}
        self.ctx.md_jobs, self.ctx.walk_jobs = [], []
        self.ctx.walk_records = []

    def initialise(self):
        """Build the initial configurations of every target (calcfunction) and label them in one work chain."""
        settings = self.ctx.settings
        # the data set and model to start from are inputs of their own (take_initial_dataset), not build options;
        # an MD-sampled test set is made after the first model (sample_test_set), not with the initial set
        skip = ('dataset', 'isolated_atom_energies', 'model')
        initial = {k: v for k, v in settings['initial'].items() if k not in skip and not k.startswith('test_')}
        initial['test_frames'] = settings['initial']['test_frames']
        if settings['initial']['test_source'] == 'md':
            initial['test_frames'] = 0
        initial['mantle_depth'] = initial_mantle_depth(settings['extract'])  # auto: no model yet, the widest
        initial['vacuum'] = settings['extract']['vacuum']
        sets = {}
        for name, structure in sorted(self.inputs.targets.items()):
            sets[name] = initial_dataset(structure, orm.Dict({**initial, 'target': name}))
        source = merge_datasets(**sets) if len(sets) > 1 else next(iter(sets.values()))
        return ToContext(initial_label=self.submit(self._label_builder(source, 'initial_label')))

    def builds_initial_set(self) -> bool:
        """Build and label the initial set from the targets, unless the campaign starts from a stored one."""
        return 'initial_dataset' not in self.inputs

    def take_initial_dataset(self):
        """Start from the given labelled set (the paper's pristine periodic set); its ``test`` frames test."""
        parts = split_by_set(self.inputs.initial_dataset)
        if 'train' not in parts:
            return self.exit_codes.ERROR_INITIAL_LABELLING.format(reason='the initial data set has no training frames')
        self.ctx.training = parts['train']
        self.ctx.test = parts.get('test')
        self.ctx.e0s = isolated_energies_of(self.inputs.initial_dataset)
        return None

    def trains_first_model(self) -> bool:
        """Train the first model, unless the campaign starts from a stored one."""
        return 'initial_model' not in self.inputs

    def take_initial_model(self):
        """Start from the given model: cycle 0 fits its density model and evaluates it; cycle 1 fine-tunes it."""
        self.ctx.model = self.inputs.initial_model

    def inspect_initial_labels(self):
        """Split the labelled initial set into training and test sets; keep the E0s for every later label."""
        node = self.ctx.initial_label
        failed = self._initial_labels_failed(node)
        if failed:
            return failed
        parts = split_by_set(node.outputs.dataset)
        self.ctx.training = parts['train']
        self.ctx.test = parts.get('test')
        self.ctx.e0s = node.outputs.isolated_atom_energies
        self.ctx.cycle_roles['label'] = node
        return None

    def fit_and_evaluate(self):
        """Fit the new model's density model on its training set and evaluate it (here, or as jobs)."""
        self.ctx.evaluation_set = self.ctx.test if self.ctx.test is not None else self.ctx.training
        if 'scan_code' in self.inputs:
            return self._submit_fit_and_evaluate()
        self._fit_and_evaluate_here()
        return None

    def record(self):
        """Collect the inference jobs (if any) and record the cycle."""
        if 'scan_code' in self.inputs:
            failed = self._collect_inference()
            if failed:
                return failed
        self._record_cycle()
        return None

    def should_continue(self) -> bool:
        """Stop on ``max_cycles``, the unknown-fraction target or the MAE_pk target."""
        stop = self.ctx.settings['stop']
        row = self.ctx.last_record
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
        self.ctx.cycle_roles = {}
        return True

    def explore(self):
        """Submit one MD job per target with all its walks (pressures drawn uniformly in the range, seeded).

        The walks of a target share the model and the structure, so one job runs them one after the other and
        pays the interpreter, imports and model load once (``MdBaseWorkChain`` with ``walks``); each walk keeps its
        own trajectory, found again by the ``walk`` index in its attributes.
        """
        settings = self.ctx.settings
        explore = settings['explore']
        rng = np.random.default_rng([settings['initial']['seed'], self.ctx.cycle])
        self.ctx.md_jobs, self.ctx.walk_records, self.ctx.walk_jobs = [], [], []
        for job, (name, structure) in enumerate(sorted(self.inputs.targets.items())):
            walks, records = [], []
            for walk in range(explore['walks']):
                stage = {
                    'steps': self.ctx.walk_steps,
                    'temperature': explore['temperature'],
                    'pressure': float(rng.uniform(*explore['pressure_range'])),
                }
                seed = int(rng.integers(2**31))
                walks.append({'seed': seed, 'schedule': [stage]})
                records.append({'target': name, 'walk': walk, 'pressure': stage['pressure'], 'seed': seed})
            link_label = f'cycle_{self.ctx.cycle}_explore_{name}'
            builder = self._explore_builder(structure, explore['overrides'], link_label, walks=walks)
            if settings['resources']['md'].get('gpus'):
                builder.md.device = orm.Str('cuda')
            if explore['gate_unknown_fraction'] is not None:  # the job ends each walk at its first unknown frame
                builder.md.density_model = self.ctx.density
                builder.md.gate = orm.Dict({'unknown_fraction': explore['gate_unknown_fraction'],
                                            'every': explore['gate_every']})  # fmt: skip
            self.to_context(md_jobs=append_(self.submit(builder)))
            self.ctx.walk_records += records
            self.ctx.walk_jobs += [job] * len(records)  # which job of md_jobs ran each walk

    def scan(self):
        """Score every atom of the walks' frames: here (calcfunction) or as a scan job on the scan code."""
        done = [(walk_outputs(node, record), record) for node, record in self._walks()]
        done = [(outputs, record) for outputs, record in done if 'trajectory' in outputs]
        if not done:
            return self.exit_codes.ERROR_EXPLORATION.format(cycle=self.ctx.cycle)
        walks = orm.Dict({f'walk_{i}': record for i, (_, record) in enumerate(done)})
        trajectories = {f'walk_{i}': outputs['trajectory'] for i, (outputs, _) in enumerate(done)}
        extract = {k: v for k, v in self.ctx.settings['extract'].items() if k not in MANTLE_AUTO_KEYS}
        failed = self._choose_mantle(extract)
        if failed:
            return failed
        self.ctx.references = {}
        if extract.pop('reference_topology', True):  # blocks from each target's own bond graph
            targets = sorted(self.inputs.targets.items())
            self.ctx.references = {f'reference_{i}': structure for i, (_, structure) in enumerate(targets)}
            extract['references'] = {name: f'reference_{i}' for i, (name, _) in enumerate(targets)}
        self.ctx.extract_settings = orm.Dict({**extract, 'cycle': self.ctx.cycle})
        if 'scan_code' in self.inputs:
            self.ctx.scan_frames = scan_frames(walks, **trajectories)
            job = self._mace_job('scan', self.ctx.scan_frames, {'mode': 'scan'}, density=self.ctx.density)
            return ToContext(scan_job=job)
        try:  # per-frame failures are skipped and listed inside; this catches the step failing as a whole
            self.ctx.scan_outputs, self.ctx.cycle_roles['scan'] = scan_and_extract.run_get_node(
                self.ctx.model,
                self.ctx.density,
                self.ctx.extract_settings,
                walks,
                **self.ctx.mantle,
                **trajectories,
                **self.ctx.references,
            )
        except Exception as error:  # noqa: BLE001 -- a named exit code, never an Excepted campaign
            return self.exit_codes.ERROR_INFERENCE.format(what='scan', cycle=self.ctx.cycle, reason=str(error))
        return None

    def inspect_scan(self):
        """Cut the clusters from a scan job's scores (if the scan was a job) and report what the scan found."""
        if 'scan_code' in self.inputs:
            failed = self._inference_failed(self.ctx.scan_job, 'scan')
            if failed:
                return failed
            self.ctx.scan_outputs, cut = clusters_from_scan.run_get_node(
                self.ctx.scan_frames,
                self.ctx.scan_job.outputs.scan,
                self.ctx.extract_settings,
                **self.ctx.mantle,
                **self.ctx.references,
            )
            self.ctx.cycle_roles.update(scan=self.ctx.scan_job, scan_clusters=cut)
        self.ctx.last_scan = self.ctx.scan_outputs['scan']
        self.ctx.clusters = self.ctx.scan_outputs.get('clusters')
        scan = self.ctx.last_scan.get_dict()
        self.report(
            f'cycle {self.ctx.cycle}: {scan["unknown_atoms"]} of {scan["atoms"]} atoms unknown '
            f'({scan["unknown_fraction"]:.4f}) in {scan["frames"]} frames; {scan["clusters"]} clusters to label'
        )
        for skipped in scan.get('skipped_frames', []):  # one bad frame is reported and skipped, never fatal
            self.report(f'cycle {self.ctx.cycle}: skipped {skipped["target"]} walk {skipped["walk"]} '
                        f'frame {skipped["frame"]}: {skipped["reason"]}')  # fmt: skip
        return None

    def has_clusters(self) -> bool:
        """Whether the scan found anything to learn."""
        return self.ctx.clusters is not None

    def nothing_unknown(self):
        """No unknown atom in any frame: the model knows what MD shows it; record the cycle and stop.

        The model is the previous cycle's, so its evaluation is recorded again, not repeated.
        """
        self._record_cycle()
        self.ctx.stop_reason = 'no unknown atom in the explored frames'

    def label(self):
        """Label the clusters with the campaign's protocol and the initial E0s."""
        builder = self._label_builder(
            self.ctx.clusters, f'cycle_{self.ctx.cycle}_label', isolated_atom_energies=self.ctx.e0s
        )
        return ToContext(cluster_label=self.submit(builder))

    def merge(self):
        """Add the labelled clusters to the training set (clusters that failed are reported, not added)."""
        node = self.ctx.cluster_label
        self.ctx.cycle_roles['label'] = node
        if 'dataset' not in node.outputs:
            return self.exit_codes.ERROR_CLUSTER_LABELLING.format(cycle=self.ctx.cycle)
        if 'failed' in node.outputs:
            self.report(f'cycle {self.ctx.cycle}: {len(node.outputs.failed.get_dict())} cluster(s) not labelled')
        self.ctx.training = merge_datasets(previous=self.ctx.training, new=node.outputs.dataset)
        return None

    def finalise(self):
        """Attach the final model, density model and data sets."""
        self._attach_results(density_model=self.ctx.density)
        self.report(f'campaign done after cycle {self.ctx.cycle}: {self.ctx.stop_reason}')
