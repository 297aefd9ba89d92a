"""The MACE inference of a cluster campaign: the density fit and the evaluations, in this process or as jobs.

Without a ``scan_code`` the features, the density fit and the evaluations run as calcfunctions in the work chain's
own process (small systems); with one, as ``mofal.mace.evaluate`` jobs on its computer, collected in the next step.
The scan of the explored frames uses the same jobs (``_mace_job``, from ``ClusterCampaignWorkChain.scan``).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from aiida_mofal.calculations.campaign import fit_density_from_features
from aiida_mofal.calculations.density import fit_density_model
from aiida_mofal.calculations.mace_evaluate import MaceEvaluateCalculation, evaluate_model
from aiida_mofal.data import DatasetData

from .campaign_steps import with_device

__all__ = ('InferenceSteps',)


class InferenceSteps:
    """The inference helpers of ``ClusterCampaignWorkChain`` (a mixin): jobs on the scan code, or calcfunctions."""

    def _mace_job(self, what: str, structures: DatasetData, job_settings: dict, density=None):
        """Submit a ``mofal.mace.evaluate`` job of the current model on the scan code."""
        resource = self.ctx.settings['resources']['scan']
        builder = MaceEvaluateCalculation.get_builder()
        builder.code = self.inputs.scan_code
        builder.model = self.ctx.model
        builder.structures = structures
        if density is not None:
            builder.density_model = density
        builder.settings = orm.Dict({**with_device(resource['settings'], resource), **job_settings})
        for key, value in resource['options'].items():
            builder.metadata.options[key] = value
        builder.metadata.call_link_label = f'cycle_{self.ctx.cycle}_{what}'
        return self.submit(builder)

    def _inference_failed(self, node, what: str):
        """Return ``ERROR_INFERENCE`` for a job that did not finish well, else None."""
        if node.is_finished_ok:
            return None
        reason = node.exit_message or f'exit status {node.exit_status}'
        return self.exit_codes.ERROR_INFERENCE.format(what=what, cycle=self.ctx.cycle, reason=reason)

    def _submit_fit_and_evaluate(self):
        """Submit the features job (for the density fit) and the evaluation jobs of the new model."""
        features = self._mace_job('features', self.ctx.training, {'mode': 'scan', 'write_features': True})
        evaluation = self._mace_job('evaluate', self.ctx.evaluation_set, {'mode': 'evaluate'})
        extra = {
            f'test_job_{name}': self._mace_job(f'test_{name}', dataset, {'mode': 'evaluate'})
            for name, dataset in sorted(self.inputs.get('test_sets', {}).items())
        }
        return ToContext(features_job=features, evaluation_job=evaluation, **extra)

    def _fit_and_evaluate_here(self) -> None:
        """Fit the density model and evaluate the new model with calcfunctions in this process."""
        density_settings = orm.Dict(self.ctx.settings['density']['settings'])
        self.ctx.density, fit = fit_density_model.run_get_node(self.ctx.model, self.ctx.training, density_settings)
        results, self.ctx.evaluation = evaluate_model.run_get_node(self.ctx.model, self.ctx.evaluation_set)
        self.ctx.metrics = results['metrics']
        self.ctx.cycle_roles.update(density_fit=fit, evaluation=self.ctx.evaluation)
        self.ctx.test_set_metrics = {}
        for name, dataset in sorted(self.inputs.get('test_sets', {}).items()):
            results, node = evaluate_model.run_get_node(self.ctx.model, dataset)
            self.ctx.test_set_metrics[name] = results['metrics']
            self.ctx.cycle_roles[f'test_{name}'] = node

    def _collect_inference(self):
        """Fit the density model on the features job's output and keep the evaluations; an exit code if one failed."""
        for what, job in (('features', self.ctx.features_job), ('evaluate', self.ctx.evaluation_job)):
            failed = self._inference_failed(job, what)
            if failed:
                return failed
        density_settings = orm.Dict(self.ctx.settings['density']['settings'])
        self.ctx.density, fit = fit_density_from_features.run_get_node(
            self.ctx.model, self.ctx.features_job.outputs.scan, density_settings
        )
        self.ctx.evaluation = self.ctx.evaluation_job
        self.ctx.metrics = self.ctx.evaluation_job.outputs.metrics
        self.ctx.cycle_roles.update(features=self.ctx.features_job, density_fit=fit, evaluation=self.ctx.evaluation)
        self.ctx.test_set_metrics = {}
        for name in sorted(self.inputs.get('test_sets', {})):
            job = self.ctx[f'test_job_{name}']
            failed = self._inference_failed(job, f'test set {name}')
            if failed:
                return failed
            self.ctx.test_set_metrics[name] = job.outputs.metrics
            self.ctx.cycle_roles[f'test_{name}'] = job
        return None
