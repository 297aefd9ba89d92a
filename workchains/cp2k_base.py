"""One CP2K single point that survives the failures CP2K really has: a restart-capable base work chain."""

from __future__ import annotations

import copy

from aiida import orm
from aiida.engine import ProcessHandlerReport
from aiida.plugins import CalculationFactory

from aiida_mofal.cp2k.outputs import abort_message
from aiida_mofal.cp2k.recovery import with_more_scf_steps, with_robust_scf, with_wavefunction_restart

from .restart import RestartWorkChain, handler_for

Cp2kCalculation = CalculationFactory('cp2k')

__all__ = ('Cp2kBaseWorkChain',)


class Cp2kBaseWorkChain(RestartWorkChain):
    """Run a ``Cp2kCalculation`` (parsed by ``mofal.cp2k``) and restart it when it fails in a way that can be fixed.

    Handlers, each naming the error it fixes:

    * ``handle_scf_not_converged`` (450): first more SCF steps from the last wavefunction; then the robust
      settings of :func:`~aiida_mofal.cp2k.inputs.robust_scf_section` (DFT: diagonalisation, Broyden mixing,
      Fermi-Dirac smearing; xTB: orbital transformation); then give up (``ERROR_SCF_UNRECOVERABLE``).
    * ``handle_out_of_walltime`` (400, 120): CP2K stopped at its own ``WALLTIME``, or the scheduler stopped the
      job at its time limit (SLURM's ``CANCELLED ... DUE TO TIME LIMIT``): continue from the wavefunction (CP2K
      starts from ATOMIC where the killed run left none).
    * ``handle_no_output`` (210, 303): a crash or kill with no complete output: retry once unchanged, then give
      up (``ERROR_CRASHED``) with the last lines CP2K wrote.
    * ``handle_cp2k_abort`` (304): CP2K stopped itself (``CPABORT``/``CPASSERT``: an input it cannot run, a
      missing basis, ...). Rerunning the same input gives the same abort, so stop at once with CP2K's own message
      (``ERROR_CP2K_ABORTED``) rather than "unhandled failure".
    """

    _process_class = Cp2kCalculation
    _inputs_namespace = 'cp2k'

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.expose_outputs(Cp2kCalculation)
        spec.output('labels', valid_type=orm.ArrayData, required=False, help='energy, forces (and stress), eV/Å.')
        spec.exit_code(
            310, 'ERROR_SCF_UNRECOVERABLE', message='The SCF did not converge, also with the robust SCF settings.'
        )
        spec.exit_code(311, 'ERROR_CRASHED', message='CP2K crashed twice without a complete output: {message}')
        spec.exit_code(312, 'ERROR_CP2K_ABORTED', message='CP2K aborted (its own check failed): {message}')

    def setup(self):
        """Copy the exposed inputs and make sure our parser reads the output."""
        super().setup()
        self.ctx.inputs.metadata = copy.deepcopy(dict(self.ctx.inputs.get('metadata', {})))
        self.ctx.inputs.metadata.setdefault('options', {})['parser_name'] = 'mofal.cp2k'
        self.ctx.scf_failures = 0
        self.ctx.crashes = 0

    def _parameters(self) -> dict:
        return self.ctx.inputs.parameters.get_dict()

    def _restart_from(self, node: orm.CalcJobNode, parameters: dict) -> None:
        """Continue from the wavefunction that ``node`` left in its remote folder (CP2K falls back to ATOMIC)."""
        self.ctx.inputs.parent_calc_folder = node.outputs.remote_folder
        self.ctx.inputs.parameters = orm.Dict(with_wavefunction_restart(parameters))

    @handler_for(Cp2kCalculation, 'ERROR_SCF_NOT_CONVERGED', priority=500)
    def handle_scf_not_converged(self, node):
        """Fix SCF not converged (450): more steps, then a more robust solver, then stop."""
        self.ctx.scf_failures += 1
        if self.ctx.scf_failures == 1:
            parameters, old, new = with_more_scf_steps(self._parameters())
            self.report(f'SCF not converged in {node.process_label}<{node.pk}>: MAX_SCF {old} -> {new}')
        elif self.ctx.scf_failures == 2:
            numbers = self.ctx.inputs.structure.get_ase().numbers
            parameters = with_robust_scf(self._parameters(), numbers)
            self.report(f'SCF still not converged in <{node.pk}>: switching to the robust SCF settings')
        else:
            self.report(f'SCF not converged in <{node.pk}> with the robust settings either: giving up')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_SCF_UNRECOVERABLE)
        self._restart_from(node, parameters)
        return ProcessHandlerReport(True)

    @handler_for(Cp2kCalculation, 'ERROR_OUT_OF_WALLTIME', 'ERROR_SCHEDULER_OUT_OF_WALLTIME', priority=400)
    def handle_out_of_walltime(self, node):
        """Fix a walltime stop, CP2K's own (400) or the scheduler's (120): continue from the wavefunction."""
        who = 'the scheduler' if node.exit_status == 120 else 'CP2K'
        self.report(f'{node.process_label}<{node.pk}> was stopped by {who} at its walltime: restarting')
        self._restart_from(node, self._parameters())
        return ProcessHandlerReport(True)

    @handler_for(Cp2kCalculation, 'ERROR_OUTPUT_MISSING', 'ERROR_OUTPUT_INCOMPLETE', priority=300)
    def handle_no_output(self, node):
        """Fix a crash without complete output (210, 303): one retry unchanged, then report what CP2K said."""
        self.ctx.crashes += 1
        if self.ctx.crashes == 1:
            self.report(f'{node.process_label}<{node.pk}> ended without a complete output: retrying once')
            return ProcessHandlerReport(True)
        tail = _last_lines(node)
        self.report(f'{node.process_label}<{node.pk}> crashed again; last output: {tail}')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_CRASHED.format(message=tail))

    @handler_for(Cp2kCalculation, 'ERROR_OUTPUT_CONTAINS_ABORT', priority=250)
    def handle_cp2k_abort(self, node):
        """Report CP2K's abort (304) with its own message and stop: the same input aborts the same way."""
        message = _abort_message(node)
        self.report(f'{node.process_label}<{node.pk}> was aborted by CP2K: {message}')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_CP2K_ABORTED.format(message=message))

    def results(self):
        """Attach the last calculation's outputs, including the labels."""
        exit_code = super().results()
        node = self.ctx.children[self.ctx.iteration - 1]
        if 'labels' in node.outputs and 'labels' not in self.node.outputs:
            self.out('labels', node.outputs.labels)
        return exit_code


def _abort_message(node: orm.CalcJobNode) -> str:
    """Return the message of CP2K's abort banner, else the messages the parser kept, else the last lines."""
    if 'retrieved' in node.outputs and 'aiida.out' in node.outputs.retrieved.base.repository.list_object_names():
        message = abort_message(node.outputs.retrieved.base.repository.get_object_content('aiida.out'))
        if message:
            return message
    if 'output_parameters' in node.outputs:
        messages = [str(m) for m in node.outputs.output_parameters.get_dict().get('messages') or [] if str(m).strip()]
        if messages:
            return ' | '.join(messages)
    return _last_lines(node)


def _last_lines(node: orm.CalcJobNode, count: int = 5) -> str:
    """Return the last lines CP2K (or the scheduler) wrote, for a report a human can act on."""
    if 'retrieved' not in node.outputs:
        return 'nothing was retrieved'
    retrieved = node.outputs.retrieved
    for name in ('aiida.out', '_scheduler-stderr.txt'):
        if name in retrieved.base.repository.list_object_names():
            lines = [line for line in retrieved.base.repository.get_object_content(name).splitlines() if line.strip()]
            if lines:
                return ' | '.join(line.strip() for line in lines[-count:])
    return 'the output files are empty'
