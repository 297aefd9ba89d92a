"""``mofal.reaxff.md``: ReaxFF MD (and minimisation) of MOFs with the handlers LAMMPS ReaxFF needs.

The amorphous-ZIF paper compares its MLP with ReaxFF (Castel & Coudert, J. Phys. Chem. C 2022). This work chain runs
that baseline as the ``lammps-reaxff`` engine of :class:`~aiida_mofal.calculations.md.MdCalculation`: LAMMPS' Python
module from the shipped driver, ``units real``, ``pair_style reaxff`` + ``fix qeq/reaxff``, the MD protocol
language of every engine (multi-stage schedules included, thermostat chains carried across stages) and the same
outputs: a ``mofal.trajectory`` per walk, its last ``structure``, its ``integrity`` record and its QEq ``charges``.
It is :class:`~aiida_mofal.workchains.md.MdBaseWorkChain` (walks, restarts, blow-up and walltime handlers) plus
what ReaxFF adds: the force field, the minimisation mode, and charge equilibration that may not converge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiida import orm

from aiida_mofal.calculations.md import MdCalculation, walks_of
from aiida_mofal.md.protocol import load_md_settings, validate_md_settings
from aiida_mofal.md.reaxff import QEQ_DEFAULTS, validate_reaxff_parameters

from .md import MdBaseWorkChain
from .restart import handler_for, serial_options

__all__ = ('MAX_QEQ_ITERATIONS', 'ReaxffMdWorkChain')

MAX_QEQ_ITERATIONS = 5 * QEQ_DEFAULTS['maxiter']
"""``handle_qeq_not_converged`` raises QEq's iteration limit up to this before it shortens the timestep."""


def _reaxff_settings(protocol: str | Mapping[str, Any] | None, overrides: Mapping[str, Any] | None) -> dict | None:
    """Return MD settings from a protocol name, a settings dict, or ``None`` for ``protocol='minimize'``."""
    if protocol == 'minimize':
        if overrides:
            raise ValueError("protocol 'minimize' runs no MD: pass the minimisation through minimize={...}")
        return None
    if protocol is None or isinstance(protocol, str):
        return load_md_settings(protocol, overrides)
    return validate_md_settings({**dict(protocol), **dict(overrides or {})})


def _file(value, make) -> orm.SinglefileData:
    return make(value) if isinstance(value, str | Path) else value


class ReaxffMdWorkChain(MdBaseWorkChain):
    """Run ReaxFF walks of ``MdCalculation`` (engine ``lammps-reaxff``) to the end of their protocols.

    Handlers, besides those of :class:`~aiida_mofal.workchains.md.MdBaseWorkChain` (``handle_blowup`` for 310 and
    311 — LAMMPS losing atoms is how a ReaxFF run blows up —, ``handle_out_of_walltime`` for 400,
    ``handle_broken_bonds`` for 330):

    * ``handle_qeq_not_converged`` (312): the charge equilibration did not converge within ``maxiter`` CG iterations
      at some step. The walk continues from its last good state with ``maxiter`` five times larger (at most
      :data:`MAX_QEQ_ITERATIONS`); when it fails again at that limit, with half the timestep (a QEq that does not
      converge at a sane tolerance usually means atoms came too close); after ``max_halvings`` halvings the walk is
      given up (``ERROR_QEQ_UNRECOVERABLE``). The tolerance is never loosened: it sets the accuracy of the forces.
    """

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.exit_code(
            312, 'ERROR_QEQ_UNRECOVERABLE', message='the QEq charges of walk(s) {walks} did not converge: {message}'
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structure: orm.StructureData,
        protocol: str | Mapping[str, Any] | None = 'nvt',
        overrides: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        force_field: orm.SinglefileData | str | Path,
        control: orm.SinglefileData | str | Path | None = None,
        minimize: Mapping[str, Any] | bool | None = None,
        qeq: Mapping[str, Any] | None = None,
        walks: Sequence[Mapping[str, Any]] | None = None,
        **kwargs,
    ):
        """Return a builder for ReaxFF MD of ``structure`` following an MD protocol.

        :param code: a Python with LAMMPS' Python module (REAXFF and QEQ packages), e.g. ``python-mace@localhost``.
        :param protocol: a protocol of ``protocols/md.yaml`` (``nvt``, ``melt_quench``, ...), a settings dict of the
            MD protocol language, or ``'minimize'`` (a fixed-cell minimisation only; its result is the one frame).
        :param overrides: MD settings replacing the protocol's (unknown keys are refused).
        :param options: CalcJob options (resources, ``max_wallclock_seconds``, ...).
        :param force_field: the ReaxFF ``ffield`` (a path or the node of
            :func:`aiida_mofal.calculations.reaxff.force_field`).
        :param control: the ReaxFF control file (path or node); ``None`` runs on LAMMPS' defaults.
        :param minimize: minimise at fixed cell before the MD: ``True`` (defaults of
            :data:`aiida_mofal.md.reaxff.MINIMIZE_DEFAULTS`) or a mapping overriding them; implied by ``'minimize'``.
        :param qeq: ``fix qeq/reaxff`` parameters overriding :data:`aiida_mofal.md.reaxff.QEQ_DEFAULTS`.
        :param walks: several walks in one job, as for ``MdBaseWorkChain.get_builder_from_protocol``.
        :raises ValueError: for an unknown protocol, override or parameter, elements without parameters, a
            non-periodic cell, ... before anything is stored or submitted.
        """
        from aiida_mofal.calculations import reaxff

        if protocol == 'minimize' and not minimize:
            minimize = True
        parameters = validate_reaxff_parameters({'qeq': dict(qeq or {}), 'minimize': minimize})
        builder = cls.get_builder()
        cls._set_walks(builder, structure, protocol, overrides, walks, None, 'lammps-reaxff', load=_reaxff_settings)
        builder.md.code = code
        builder.md.engine = orm.Str('lammps-reaxff')
        builder.md.force_field = _file(force_field, reaxff.force_field)
        if control is not None:
            builder.md.control = _file(control, reaxff.control_file)
        builder.md.reaxff = orm.Dict(parameters)
        builder.md.metadata.options = serial_options({'withmpi': False, **dict(options or {})})
        reaxff.check_reaxff_inputs(builder.md, walks_of(builder.md))
        for key, value in kwargs.items():
            setattr(builder, key, value)
        return builder

    def _timestep_factor(self, walk: dict, status: str) -> float:
        """After QEq failures: a larger iteration limit first, then half the timestep."""
        if status != 'qeq_not_converged':
            return 1.0
        parameters = self.ctx.inputs.reaxff.get_dict()
        maxiter = parameters['qeq']['maxiter']
        if maxiter < MAX_QEQ_ITERATIONS:
            parameters['qeq']['maxiter'] = min(5 * maxiter, MAX_QEQ_ITERATIONS)
            self.ctx.inputs.reaxff = orm.Dict(parameters)
            self.report(f'QEq did not converge: maxiter {maxiter} -> {parameters["qeq"]["maxiter"]}')
            return 1.0
        if walk['halvings'] >= self.inputs.max_halvings.value:
            walk['state'] = 'qeq_not_converged'
        return 0.5

    def _advance(self, walk: dict, outputs: dict, completed: int, factor: float) -> None:
        if walk['state'] == 'qeq_not_converged':  # given up: keep what it did
            walk['last'] = outputs
            walk['segments'].append(outputs)
            return
        super()._advance(walk, outputs, completed, factor)

    @handler_for(MdCalculation, 'ERROR_QEQ_NOT_CONVERGED', priority=450)
    def handle_qeq_not_converged(self, node):
        """Fix QEq not converged (312): more CG iterations, then half the timestep, from the last good state."""
        return self._continue_walks(node)

    def _given_up(self, failed: list[dict]):
        qeq = [walk for walk in failed if walk['state'] == 'qeq_not_converged']
        if qeq:
            walks = ', '.join(str(walk['index']) for walk in qeq)
            return self.exit_codes.ERROR_QEQ_UNRECOVERABLE.format(walks=walks, message=qeq[0]['message'])
        return super()._given_up(failed)
