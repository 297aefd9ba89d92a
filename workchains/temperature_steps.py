"""The end of every temperature-campaign step, and the paper's last one: evaluation, record, random additions.

Kept apart from :mod:`.temperature` (which composes them into the outline) so that each module stays small:
evaluation runs in the campaign's process (small systems) or as a ``mofal.mace.evaluate`` job on
``evaluate_code``; the record is one ``Dict`` per step; the final step draws ``final.random`` frames at random
from one more ramp run with the last model (Sharma & Sanvito add ~100 this way after 1000 K).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from aiida_mofal.calculations.mace_evaluate import MaceEvaluateCalculation, evaluate_model
from aiida_mofal.calculations.temperature import intact_frame_count, random_frames, record_temperature_step

from .campaign_steps import wall_seconds, with_device

__all__ = ('EvaluationAndFinalSteps',)


class EvaluationAndFinalSteps:
    """Outline steps of ``TemperatureCampaignWorkChain``: ``evaluate``, ``record`` and the final random step."""

    def evaluate(self):
        """Evaluate the new model on the test set (or the training set without one): a job, or in this process."""
        evaluation_set = self.ctx.test if self.ctx.test is not None else self.ctx.training
        if 'evaluate_code' in self.inputs:
            resource = self.ctx.settings['resources']['evaluate']
            builder = MaceEvaluateCalculation.get_builder()
            builder.code, builder.model, builder.structures = self.inputs.evaluate_code, self.ctx.model, evaluation_set
            builder.settings = orm.Dict({**with_device(resource['settings'], resource), 'mode': 'evaluate'})
            for key, value in resource['options'].items():
                builder.metadata.options[key] = value
            builder.metadata.call_link_label = f'step_{self.ctx.step}_evaluate'
            return ToContext(evaluation_job=self.submit(builder))
        results, self.ctx.evaluation = evaluate_model.run_get_node(self.ctx.model, evaluation_set)
        self.ctx.metrics = results['metrics']
        return None

    def record(self):
        """Collect the evaluation job (if any) and store the step's record."""
        if 'evaluate_code' in self.inputs:
            job = self.ctx.evaluation_job
            if not job.is_finished_ok or 'metrics' not in job.outputs:
                reason = job.exit_message or f'exit status {job.exit_status}'
                return self.exit_codes.ERROR_EVALUATION.format(step=self.ctx.step, reason=reason)
            self.ctx.evaluation, self.ctx.metrics = job, job.outputs.metrics
        self._record()
        return None

    def _record(self) -> None:
        """Store the step's record from ``ctx.metrics`` and ``ctx.evaluation``, and report it."""
        evaluation = self.ctx.evaluation
        self.ctx.roles['evaluation'] = evaluation
        processes = {
            **self.ctx.step_info,
            'evaluation': evaluation.uuid,
            'wall_seconds': wall_seconds(self.ctx.roles.values()),
        }
        if self.ctx.final:
            processes['final'] = True
        inputs = {**self._record_inputs(self.ctx.metrics, processes), 'selection': self.ctx.selection}
        if self.ctx.step > 0 and not self.ctx.final:
            inputs['temperature'] = orm.Float(self.ctx.temperatures[self.ctx.step - 1])
        record = record_temperature_step(**inputs)
        self.out(f'steps.step_{self.ctx.step}', record)
        row = record.get_dict()
        if self.ctx.final:
            where = 'random configurations'
        else:
            where = 'perturbations' if self.ctx.step == 0 else f'{row["temperature_k"]:g} K'
        self.report(
            f'step {self.ctx.step} ({where}): {row["accepted"]} accepted of {row["frames_seen"]} frames, '
            f'{row["training_configurations"]} configurations, force RMSE {row["force_rmse_ev_per_a"]} eV/Å'
        )

    # ---------------------------------------------------------------------------------------------- final
    def wants_random(self) -> bool:
        """Whether the settings ask for the paper's final random configurations (``final.random`` > 0)."""
        return self.ctx.settings.get('final', {}).get('random', 0) > 0

    def final_range(self) -> tuple[float, float]:
        """Return the final ramp's temperatures: ``final.temperature_range``, or the test ramp's low end to T_last.

        T_last is the temperature of the last step that ran (T_max, or that of a step that accepted nothing): the
        last model has seen nothing hotter, and a ramp far above it blows up (measured: 3512 K at 160 fs of a
        10 -> 1000 K ramp with a model trained up to 300 K).
        """
        final = self.ctx.settings['final']
        if final['temperature_range']:
            low, high = final['temperature_range']
            return float(low), float(high)
        last = self.ctx.temperatures[max(self.ctx.step, 1) - 1]
        return float(self.ctx.settings['test']['temperature_range'][0]), float(last)

    def run_final_ramp(self):
        """One more MD ramp (``final.temperature_range``, default test low end -> T_last) with the last model."""
        final, test = self.ctx.settings['final'], self.ctx.settings['test']
        low, high = self.final_range()
        stage = {'steps': final['steps'] or test['steps'], 'temperature': [low, high],
                 'pressure': self.ctx.settings['explore']['pressure']}  # fmt: skip
        self.ctx.last_step = self.ctx.step
        self.ctx.step, self.ctx.final = self.ctx.step + 1, True
        self.ctx.roles, self.ctx.step_info = {}, {}
        self.report(f'step {self.ctx.step}: final ramp {low:g} -> {high:g} K for {final["random"]} random frames')
        return ToContext(md=self.submit(self._md_builder([stage], 'final_ramp', seed=self._seed())))

    def pick_random(self):
        """Draw ``final.random`` frames of the ramp at random (seeded); they are labelled and added as they are.

        A ramp that failed (blew up, exit 310, or any other way) ends nothing: the campaign keeps the last step's
        model and data set, says so in its report and its stop reason, and ends with exit status 0.
        """
        node = self.ctx.md
        self.ctx.roles['md'] = node
        self.ctx.step_info = {'runs': 1, 'runs_with_frames': int('trajectory' in node.outputs),
                              'md_exit_status': node.exit_status}  # fmt: skip
        settings = orm.Dict({'count': self.ctx.settings['final']['random'], 'seed': self._seed(), 'intact_only': True})
        frames = intact_frame_count(node.outputs.trajectory, settings) if 'trajectory' in node.outputs else 0
        if not node.is_finished_ok or frames < 2:
            written = node.outputs.trajectory.num_frames if 'trajectory' in node.outputs else 0
            broken = 'it broke a covalent bond at once' if written >= 2 else 'it gave no frames'
            why = node.exit_message or (broken if node.is_finished_ok else '')
            state = f'exit status {node.exit_status}' if node.is_finished else f'{node.process_state.value}'
            reason = f'the final ramp failed ({state}{": " + why if why else ""})'
            last = self.ctx.last_step
            self.report(f'{reason}: no random configurations; the model and data set are those of step {last}')
            self.ctx.stop = f'{self.ctx.stop}; {reason}, so the model and data set are those of step {last}'
            self.ctx.final_failed = True
            return None
        outputs, picked = random_frames.run_get_node(node.outputs.trajectory, settings)
        self.ctx.roles['selection'] = picked
        self.ctx.selection, self.ctx.selected = outputs['report'], outputs['dataset']
        return None

    def final_ramp_ok(self) -> bool:
        """Whether the final ramp gave frames to draw from (else the last step's model stays)."""
        return not self.ctx.final_failed
