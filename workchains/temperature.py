"""The temperature-driven active-learning campaign with CBAD selection (Sharma & Sanvito, Figure 4) as a work chain."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiida import orm
from aiida.engine import ExitCode, ToContext, WorkChain, if_, while_
from ase import Atoms

from aiida_mofal.calculations.datasets import merge_datasets
from aiida_mofal.calculations.selection import select_cbad
from aiida_mofal.calculations.temperature import (
    displaced_starts,
    intact_frame_count,
    perturbed_frames,
    ramp_test_set,
)
from aiida_mofal.data import DatasetData

from .campaign_steps import CampaignSteps, failed_labels
from .temperature_inputs import temperature_inputs, validate_temperature_settings
from .temperature_steps import EvaluationAndFinalSteps

__all__ = ('STOP_REASON', 'TemperatureCampaignWorkChain')

#: the extra of a finished campaign node that says why it stopped (exit status 0 keeps no message)
STOP_REASON = 'stop_reason'


class TemperatureCampaignWorkChain(EvaluationAndFinalSteps, CampaignSteps, WorkChain):
    """Grow a training set by MD at rising temperatures, keeping at most one CBAD-new configuration per run.

    Step 0: CBAD-select random perturbations of the experimental structure, label them (energy, forces, stress),
    train model 0; one MD ramp (``test.temperature_range``) with model 0 gives the test set, labelled once. Step k
    (T_k = 100, 200, ... K by default): one MD job of ``explore.runs`` independent NPT walks from randomly displaced
    starts with model k−1; from each run at most one frame, the one adding most new (type, bin) pairs against the
    training set's CBAD occupancy (``select_cbad``, ``best_per_trajectory``); label; retrain (fine-tune or from
    scratch); evaluate on the test set. It stops after T_max, or at the first step that accepts nothing; then,
    as the paper does, ``final.random`` frames drawn at random from one more ramp run with the last model (by
    default from the test ramp's low end up to the last step's temperature) are labelled and added, and the final
    model is trained on them; a final ramp that fails keeps the last step's model. It ends with exit status 0 and
    a message saying why it stopped (also the node's ``stop_reason`` extra). With an ``evaluate_code`` the
    evaluations run as ``mofal.mace.evaluate`` jobs on it; without, in this process (small systems).
    """

    _round, _roles = 'step', 'roles'  # of CampaignSteps: ctx.step counts the rounds, ctx.roles keeps their processes

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.input(
            'settings',
            valid_type=orm.Dict,
            validator=validate_temperature_settings,
            help='The temperature-campaign settings.',
        )
        spec.input('structure', valid_type=orm.StructureData, help='The experimental structure (CBAD reference).')
        spec.input('cp2k_code', valid_type=orm.AbstractCode)
        spec.input('train_code', valid_type=orm.AbstractCode)
        spec.input('md_code', valid_type=orm.AbstractCode)
        spec.input('evaluate_code', valid_type=orm.AbstractCode, required=False, help='Python+MACE: evaluation jobs')
        learn = (cls.label, cls.merge, cls.train, cls.inspect_training, cls.evaluate, cls.record)  # one step's tail
        spec.outline(
            cls.setup,
            cls.perturb_and_select,
            cls.label_initial,
            cls.inspect_initial_labels,
            cls.train,
            cls.inspect_training,
            if_(cls.wants_test_set)(
                cls.run_test_ramp,
                cls.label_test_set,
                cls.inspect_test_set,
            ),
            cls.evaluate,
            cls.record,
            while_(cls.should_continue)(
                cls.explore,
                cls.select,
                if_(cls.accepted_any)(
                    *learn,
                ).else_(
                    cls.nothing_accepted,
                ),
            ),
            if_(cls.wants_random)(
                cls.run_final_ramp,
                cls.pick_random,
                if_(cls.final_ramp_ok)(
                    *learn,
                ),
            ),
            cls.finalise,
        )
        spec.output('model', valid_type=orm.Data, help='The last model (mofal.mace_model).')
        spec.output('dataset', valid_type=DatasetData, help='The final training set.')
        spec.output('test_set', valid_type=DatasetData, required=False, help='The labelled test ramp frames.')
        spec.output('occupancy', valid_type=orm.Dict, help='The CBAD occupancy of the last selection.')
        spec.output_namespace('steps', valid_type=orm.Dict, dynamic=True, help='One record per temperature step.')
        spec.exit_code(
            405,
            'ERROR_TOO_FEW_INITIAL',
            message='CBAD accepted {accepted} of {candidates} perturbations and training needs at least 2: raise '
            'initial.candidates or initial.rattle, or refine selection.resolutions',
        )
        cls.define_step_exit_codes(spec, initial='the step-0 configurations', round_phrase='at step {step}')
        spec.exit_code(425, 'ERROR_TEST_SET', message='the test set could not be made: {reason}')
        spec.exit_code(
            430, 'ERROR_EXPLORATION', message='no MD run of step {step} ({temperature} K) gave frames: {reason}'
        )
        spec.exit_code(440, 'ERROR_LABELLING', message='no configuration of step {step} could be labelled: {reason}')
        spec.exit_code(450, 'ERROR_EVALUATION', message='the evaluation of step {step} failed: {reason}')

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: Mapping[str, orm.AbstractCode | str] | None,
        structure: orm.StructureData | Atoms | str | Path | Mapping[str, Any],
        protocol: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        """Return a builder for a temperature campaign on ``structure`` from ``protocols/temperature.yaml``.

        Everything that can be checked before a job runs is checked here: the settings (unknown keys, values, the
        label, MACE and MD protocols and overrides they name, the CBAD resolutions), the codes, the CalcJob
        options, the structure against the label protocol and as a CBAD reference, and the runs' MD settings.

        :param codes: per step (``cp2k``, ``train``, ``md``) a code or its label; a step not given takes
            ``resources.<step>.code`` of the settings.
        :param structure: a ``StructureData``, ASE ``Atoms`` or structure file, or a mapping of one name to one
            (the ``targets`` of a campaign file).
        :param overrides: the sections of a campaign file (``initial``, ``selection``, ..., ``resources``) merged
            over the protocol and validated; see ``docs/guide/temperature.md``.
        :param options: per step, CalcJob options over ``resources.<step>.options``.
        :raises ValueError: naming the key, the structure or the code and the fix.
        """
        return cls._builder_of(temperature_inputs(codes, structure, protocol, overrides, options))

    # ---------------------------------------------------------------------------------------------- helpers
    def _md_builder(self, schedule: list[dict], link_label: str, walks: list[dict] | None = None, seed: int = 0):
        overrides = {**self.ctx.settings['explore']['overrides'], 'schedule': schedule, 'seed': seed}
        return self._explore_builder(self.inputs.structure, overrides, link_label, walks=walks)

    def _seed(self) -> int:
        return int(self.ctx.settings['initial']['seed']) * 1000 + self.ctx.step

    # ---------------------------------------------------------------------------------------------- step 0
    def setup(self):
        """Read the settings, the temperature ladder and the run length once; start at step 0 with no model."""
        from aiida_mofal.campaign.temperature import temperatures

        self.ctx.run_steps = self._read_settings()
        self.ctx.temperatures = temperatures(self.ctx.settings)
        self.ctx.step = 0
        self.ctx.final = self.ctx.final_failed = False
        self.ctx.model = None
        self.ctx.test = None
        self.ctx.stop = None
        self.ctx.roles = {}
        self.ctx.step_info = {}

    def perturb_and_select(self):
        """Make the step-0 candidates (perturbations of the structure) and keep those CBAD accepts, in order."""
        initial = self.ctx.settings['initial']
        candidates = perturbed_frames(self.inputs.structure, orm.Dict(initial))
        settings = orm.Dict({'resolutions': self.ctx.settings['selection']['resolutions'], 'mode': 'sequential'})
        outputs, node = select_cbad.run_get_node(self.inputs.structure, settings, perturbations=candidates)
        self.ctx.selection, self.ctx.occupancy = outputs['report'], outputs['occupancy']
        self.ctx.selected = outputs['dataset']
        self.ctx.roles['selection'] = node
        report = self.ctx.selection.get_dict()
        self.report(f'step 0: CBAD accepted {report["n_selected"]} of {report["n_frames"]} perturbed configurations')
        if report['n_selected'] < 2:  # a training needs a validation split: one configuration is not a training set
            return self.exit_codes.ERROR_TOO_FEW_INITIAL.format(
                accepted=report['n_selected'], candidates=report['n_frames']
            )
        return None

    def label_initial(self):
        """Label the accepted perturbations (energy, forces, stress) and compute the E0s."""
        return ToContext(initial_label=self.submit(self._label_builder(self.ctx.selected, 'step_0_label')))

    def inspect_initial_labels(self):
        """Make the labelled perturbations the first training set; keep the E0s for every later label."""
        node = self.ctx.initial_label
        failed = self._initial_labels_failed(node)
        if failed:
            return failed
        if node.outputs.dataset.count < 2:
            reason = f'only {node.outputs.dataset.count} labelled; training needs at least 2 ({node.exit_message})'
            return self.exit_codes.ERROR_INITIAL_LABELLING.format(reason=reason)
        self.ctx.training = node.outputs.dataset
        self.ctx.e0s = node.outputs.isolated_atom_energies
        self.ctx.roles['label'] = node
        self.ctx.step_info = {'runs': 0, 'runs_with_frames': 0, 'labelled': node.outputs.dataset.count,
                              'failures': failed_labels(node)}  # fmt: skip
        return None

    def wants_test_set(self) -> bool:
        """Whether the settings ask for a test set (``test.frames`` > 0)."""
        return self.ctx.settings['test']['frames'] > 0

    def run_test_ramp(self):
        """One MD run with model 0 and T ramped over ``test.temperature_range``: the test set's frames."""
        test = self.ctx.settings['test']
        low, high = test['temperature_range']
        pressure = self.ctx.settings['explore']['pressure']
        stage = {'steps': test['steps'], 'temperature': [low, high], 'pressure': pressure}
        seed = self._seed() + 999
        return ToContext(test_ramp=self.submit(self._md_builder([stage], 'test_ramp', seed=seed)))

    def label_test_set(self):
        """Take evenly spaced frames of the ramp and label them once, with the E0s of step 0."""
        node = self.ctx.test_ramp
        if 'trajectory' not in node.outputs:
            return self.exit_codes.ERROR_TEST_SET.format(reason=f'the MD ramp gave no trajectory ({node.exit_message})')
        if not node.is_finished_ok:
            self.report(f'the test ramp ended with {node.exit_status} ({node.exit_message}); using its frames')
        settings = orm.Dict({'frames': self.ctx.settings['test']['frames'], 'intact_only': True})
        intact = intact_frame_count(node.outputs.trajectory, settings)
        if intact < 2:
            reason = (
                f'every frame of the MD ramp after its start has a broken or formed covalent bond ({intact} intact)'
            )
            return self.exit_codes.ERROR_TEST_SET.format(reason=reason)
        if intact < node.outputs.trajectory.num_frames:
            self.report(f'the test ramp broke a covalent bond at frame {intact}: test frames are drawn before it')
        frames = ramp_test_set(node.outputs.trajectory, settings)
        builder = self._label_builder(frames, 'test_label', isolated_atom_energies=self.ctx.e0s)
        return ToContext(test_label=self.submit(builder))

    def inspect_test_set(self):
        """Keep the labelled test set."""
        node = self.ctx.test_label
        if 'dataset' not in node.outputs:
            return self.exit_codes.ERROR_TEST_SET.format(reason=f'no test frame was labelled ({node.exit_message})')
        self.ctx.test = node.outputs.dataset
        self.ctx.roles.update(test_ramp=self.ctx.test_ramp, test_label=node)
        return None

    # ---------------------------------------------------------------------------------------------- step k
    def should_continue(self) -> bool:
        """Go on to the next temperature unless the last one is done (or a step accepted nothing)."""
        if self.ctx.stop is not None:
            return False
        if self.ctx.step >= len(self.ctx.temperatures):
            self.ctx.stop = f'reached T_max = {self.ctx.temperatures[-1]:g} K after {self.ctx.step} temperature step(s)'
            return False
        self.ctx.step += 1
        self.ctx.roles, self.ctx.step_info = {}, {}
        return True

    def explore(self):
        """Submit one MD job: ``runs`` NPT walks at T_k with the last model, each from its own displaced start."""
        explore = self.ctx.settings['explore']
        temperature = self.ctx.temperatures[self.ctx.step - 1]
        seed = self._seed()
        starts = displaced_starts(
            self.inputs.structure, orm.Dict({'runs': explore['runs'], 'rattle': explore['start_rattle'], 'seed': seed})
        )
        walks = [{'structure': starts[key], 'seed': seed * 1000 + index} for index, key in enumerate(sorted(starts))]
        stage = {'steps': self.ctx.run_steps, 'temperature': temperature, 'pressure': explore['pressure']}
        builder = self._md_builder([stage], f'step_{self.ctx.step}_md', walks=walks, seed=seed)
        self.report(f'step {self.ctx.step}: {len(walks)} NPT runs of {self.ctx.run_steps} steps at {temperature:g} K')
        return ToContext(md=self.submit(builder))

    def select(self):
        """From each run's trajectory (as stored), CBAD keeps at most one frame against the training set."""
        node = self.ctx.md
        self.ctx.roles['md'] = node
        walks = node.outputs.walks if 'walks' in node.outputs else {}
        trajectories = {f'run_{int(key.split("_")[-1]):03d}': walks[key]['trajectory'] for key in walks
                        if 'trajectory' in walks[key]}  # fmt: skip
        runs = self.ctx.settings['explore']['runs']
        self.ctx.step_info = {'runs': runs, 'runs_with_frames': len(trajectories), 'md_exit_status': node.exit_status}
        if not trajectories:
            return self.exit_codes.ERROR_EXPLORATION.format(
                step=self.ctx.step,
                temperature=f'{self.ctx.temperatures[self.ctx.step - 1]:g}',
                reason=node.exit_message or f'exit status {node.exit_status}',
            )
        if len(trajectories) < runs:
            self.report(f'step {self.ctx.step}: {runs - len(trajectories)} of {runs} runs gave no frames')
        resolutions = self.ctx.settings['selection']['resolutions']
        settings = orm.Dict({'resolutions': resolutions, 'mode': 'best_per_trajectory', 'intact_only': True})
        outputs, selection = select_cbad.run_get_node(
            self.inputs.structure, settings, training_set=self.ctx.training, **trajectories
        )
        self.ctx.roles['selection'] = selection
        self.ctx.selection, self.ctx.occupancy = outputs['report'], outputs['occupancy']
        self.ctx.selected = outputs['dataset']
        report = self.ctx.selection.get_dict()
        broken = report['n_frames'] - report['n_intact']
        left_out = f'; {broken} frame(s) after a broken or formed covalent bond left out' if broken else ''
        self.report(f'step {self.ctx.step}: CBAD accepted {report["n_selected"]} of {len(trajectories)} runs '
                    f'({report["n_frames"]} frames{left_out})')  # fmt: skip
        return None

    def accepted_any(self) -> bool:
        """Whether CBAD found anything new in this step's runs."""
        return self.ctx.selection['n_selected'] > 0

    def label(self):
        """Label the accepted configurations with the campaign's protocol and the step-0 E0s."""
        link_label = 'final_label' if self.ctx.final else f'step_{self.ctx.step}_label'
        builder = self._label_builder(self.ctx.selected, link_label, isolated_atom_energies=self.ctx.e0s)
        return ToContext(step_label=self.submit(builder))

    def merge(self):
        """Add the labelled configurations to the training set (failed ones are counted, not added)."""
        node = self.ctx.step_label
        self.ctx.roles['label'] = node
        self.ctx.step_info.update(failures=failed_labels(node))
        if 'dataset' not in node.outputs:
            return self.exit_codes.ERROR_LABELLING.format(step=self.ctx.step, reason=node.exit_message or 'no data set')
        self.ctx.step_info['labelled'] = node.outputs.dataset.count
        self.ctx.training = merge_datasets(previous=self.ctx.training, new=node.outputs.dataset)
        return None

    def nothing_accepted(self):
        """Every run's frames sit in occupied bins: the training set already covers T_k; record the step and stop.

        The model is the previous step's: its evaluation is recorded again for this step's row, not repeated.
        """
        temperature = self.ctx.temperatures[self.ctx.step - 1]
        self.ctx.step_info.update(labelled=0, failures=0)
        self._record()
        self.ctx.stop = f'step {self.ctx.step} at {temperature:g} K accepted no configuration (CBAD found nothing new)'

    def finalise(self):
        """Attach the final model and data sets; end with the reason the campaign stopped.

        aiida-core keeps no exit message for exit status 0, so the reason is also the node's ``stop_reason``
        extra (what ``mofal status`` prints) and the last report line.
        """
        self._attach_results(occupancy=self.ctx.occupancy)
        self.node.base.extras.set(STOP_REASON, self.ctx.stop)
        self.report(f'campaign done: {self.ctx.stop}')
        return ExitCode(0, self.ctx.stop)
