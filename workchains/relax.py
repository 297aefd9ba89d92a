"""``mofal.relax.base``: MACE relaxations that continue until every structure has converged.

A job that stops some structures at their step limit (``ERROR_NOT_CONVERGED``) or before the walltime
(``ERROR_OUT_OF_WALLTIME``) is followed by one that relaxes only those, each from the geometry it reached; the
converged ones are kept. The outputs are those of :class:`~aiida_mofal.calculations.relax.MaceRelaxCalculation`
for every structure, whichever job relaxed it; ``result`` joins the jobs' records (:func:`join_relax_results`) and
says whether all converged (``converged``, ``unconverged``).

When ``max_iterations`` jobs leave some structure unconverged, the work chain ends with
``ERROR_MAXIMUM_ITERATIONS_EXCEEDED`` (401) *and* its outputs: the last geometry, forces and record of every
structure, ``result['converged']`` false. (``BaseRestartWorkChain.inspect_process`` aborts at the limit before
``results`` would run, so the handler attaches them itself, as aiida-core documents for that case.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.common import LinkType
from aiida.engine import ProcessHandlerReport, calcfunction

from aiida_mofal.calculations.relax import MaceRelaxCalculation, check_relax_inputs
from aiida_mofal.data.mace_model import MaceModelData

from .restart import RestartWorkChain, TorchScriptJobs, handler_for, serial_options

__all__ = ('MaceRelaxWorkChain', 'join_relax_results')


@calcfunction
def join_relax_results(**results: orm.Dict) -> orm.Dict:
    """Join the ``result`` records of consecutive relaxation jobs (``result_0``, ``result_1``, ...): the last wins.

    Each structure's record is that of the job that relaxed it last, with the steps of all jobs added up;
    ``converged`` says whether every structure converged, ``unconverged`` names those that did not.
    """
    joined: dict[str, dict] = {}
    ordered = sorted(results, key=lambda key: int(key.rsplit('_', 1)[1]))
    for key in ordered:
        for name, record in results[key]['structures'].items():
            steps = joined.get(name, {}).get('steps', 0)
            joined[name] = {**record, 'steps': steps + record['steps']}
    last = results[ordered[-1]].get_dict()
    unconverged = sorted(name for name, record in joined.items() if not record['converged'])
    return orm.Dict({**last, 'structures': joined, 'jobs': len(ordered), 'converged': not unconverged,
                     'unconverged': unconverged})  # fmt: skip


class MaceRelaxWorkChain(TorchScriptJobs, RestartWorkChain):
    """Relax structures with a MACE model; continue the ones a job left unconverged from where they stopped."""

    _process_class = MaceRelaxCalculation
    _inputs_namespace = 'relax'

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        cls.define_torchscript(spec)
        spec.output_namespace('structures', valid_type=orm.StructureData, dynamic=True, help='Relaxed, by name.')
        spec.output_namespace('forces', valid_type=orm.ArrayData, dynamic=True, help='Forces and stress, by name.')
        spec.output('result', valid_type=orm.Dict, help='Per name: energy, stress, volume, steps, converged; '
                    'converged (all), unconverged (names), jobs.')  # fmt: skip

    @classmethod
    def get_builder_for(
        cls,
        code: orm.AbstractCode,
        structures: Mapping[str, orm.StructureData],
        model: MaceModelData,
        settings: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        max_iterations: int = 5,
    ):
        """Return a builder that relaxes ``structures`` (name → StructureData) with ``model``.

        :param settings: :mod:`aiida_mofal.md.relax` settings (mode, optimizer, fmax, max_steps, pressure).
        :raises ValueError: for settings, elements or cells that cannot give a result, before anything runs.
        """
        settings = check_relax_inputs(dict(structures), model, dict(settings or {}))
        builder = cls.get_builder()
        builder.relax.code = code
        builder.relax.model = model
        builder.relax.structures = dict(structures)
        builder.relax.settings = orm.Dict(settings)
        builder.relax.metadata.options = serial_options(options)
        builder.max_iterations = orm.Int(max_iterations)
        return builder

    def setup(self):
        """Copy the inputs; compile the model to TorchScript once (when it can be)."""
        super().setup()
        self.ctx.relaxed = {}
        self.ctx.results = []
        if self.wants_torchscript():
            self.compile_model()

    def _collect(self, node) -> list[str]:
        """Keep the outputs of ``node``'s converged structures; return the names left to relax."""
        links = {link.link_label: link.node for link in node.base.links.get_outgoing(link_type=LinkType.CREATE).all()}
        if 'result' not in links:
            return sorted(self.ctx.inputs.structures)
        self.ctx.results.append(links['result'])
        records = links['result']['structures']
        pending = []
        for name in sorted(self.ctx.inputs.structures):
            structure = links.get(f'structures__{name}')
            if structure is not None:
                self.ctx.relaxed[name] = (structure, links[f'forces__{name}'])
            if not records.get(name, {}).get('converged', False):
                pending.append(name)
                if structure is not None:
                    self.ctx.inputs.structures[name] = structure
        self.ctx.inputs.structures = {name: self.ctx.inputs.structures[name] for name in pending}
        return pending

    @handler_for(MaceRelaxCalculation, 'ERROR_NOT_CONVERGED', 'ERROR_OUT_OF_WALLTIME', priority=500)
    def handle_not_converged(self, node):
        """Continue every structure that hit the step limit or the walltime from the geometry it reached.

        At ``max_iterations`` there is no next job: attach the last outputs (``result['converged']`` false) and
        end with ``ERROR_MAXIMUM_ITERATIONS_EXCEEDED``.
        """
        pending = self._collect(node)
        if self.ctx.iteration >= self.inputs.max_iterations.value:
            self.report(f'{node.process_label}<{node.pk}>: {len(pending)} structure(s) still unconverged after '
                        f'{self.ctx.iteration} job(s) (max_iterations): {", ".join(pending)}; attaching their last '
                        'geometries')  # fmt: skip
            self.ctx.is_finished = True  # inspect_process then returns the report's exit code, outputs attached
            self._attach_all()
            return ProcessHandlerReport(True, self.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED)
        self.report(f'{node.process_label}<{node.pk}>: {len(pending)} structure(s) continue: {", ".join(pending)}')
        return ProcessHandlerReport(True)

    def _attach_all(self) -> int:
        """Attach every structure's last outputs and the joined records; return how many structures."""
        structures = {name: pair[0] for name, pair in self.ctx.relaxed.items()}
        forces = {name: pair[1] for name, pair in self.ctx.relaxed.items()}
        self.out('structures', structures)
        self.out('forces', forces)
        if self.ctx.results:
            self.out('result', join_relax_results(**{f'result_{k}': r for k, r in enumerate(self.ctx.results)}))
        return len(structures)

    def results(self):
        """Attach every structure's last outputs and the joined records (the last job succeeded)."""
        node = self.ctx.children[self.ctx.iteration - 1]
        if node.is_finished_ok:
            self._collect(node)
        count = self._attach_all()
        self.report(f'relaxed {count} structure(s) in {self.ctx.iteration} job(s)')
        return None
