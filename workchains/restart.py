"""The shape every restarting work chain of aiida-mofal shares (aiida-quantumespresso's ``*BaseWorkChain`` shape).

A subclass sets ``_process_class`` (the CalcJob it runs) and ``_inputs_namespace`` (where that CalcJob's inputs are
exposed), and writes ``handle_<what>`` process handlers, each decorated by :func:`handler_for` with the exit codes
it handles. :class:`RestartWorkChain` exposes those inputs and gives it the outline (set up, run and inspect
until a child succeeds or a handler gives up, attach the results) and a ``setup`` that copies the exposed inputs
into ``ctx.inputs``, where the handlers change them.
:class:`TorchScriptJobs` adds, to a work chain whose jobs run a MACE model, the ``torchscript`` input and the
compilation of the model once for all its jobs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, process_handler, while_

__all__ = ('RestartWorkChain', 'TorchScriptJobs', 'handler_for', 'serial_options')


def serial_options(options: Mapping[str, Any] | orm.Dict | None) -> dict:
    """Return a copy of CalcJob ``options`` (a mapping or an ``options`` input node), serial unless they say more."""
    given = options.get_dict() if isinstance(options, orm.Dict) else copy.deepcopy(dict(options or {}))
    return {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, **given}


def handler_for(process_class, *labels: str, priority: int):
    """Return the ``process_handler`` decorator of a handler for the exit codes ``labels`` of ``process_class``."""
    return process_handler(priority=priority, exit_codes=[process_class.exit_codes[label] for label in labels])


class RestartWorkChain(BaseRestartWorkChain):
    """A ``BaseRestartWorkChain`` with the standard outline and ``ctx.inputs`` filled from the exposed inputs."""

    _inputs_namespace: ClassVar[str]

    @classmethod
    def define(cls, spec):
        """Expose the child's inputs and set the outline: ``setup``, run and inspect while needed, ``results``."""
        super().define(spec)
        if cls._process_class is not None:  # None only on this base itself
            spec.expose_inputs(cls._process_class, namespace=cls._inputs_namespace)
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )

    def setup(self):
        """Copy the exposed inputs of the child CalcJob into ``ctx.inputs``, where the handlers change them."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(self._process_class, self._inputs_namespace))


class TorchScriptJobs:
    """For a :class:`RestartWorkChain` whose jobs run ``ctx.inputs.model``: give them its TorchScript form."""

    @staticmethod
    def define_torchscript(spec) -> None:
        """Declare the ``torchscript`` input (default true)."""
        spec.input(
            'torchscript',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(True),
            help='Run MACE as TorchScript (compiled once per model; the jobs then skip importing mace-torch).',
        )

    def wants_torchscript(self) -> bool:
        """Whether the jobs should get a compiled model: asked for, a model given, none compiled yet."""
        inputs = self.ctx.inputs
        return self.inputs.torchscript.value and 'model' in inputs and 'compiled_model' not in inputs

    def compile_model(self) -> None:
        """Give the jobs the TorchScript form of the model; without it (a model torch cannot script) they load MACE."""
        from aiida_mofal.calculations.torchscript import get_torchscript_model

        compiled, why = get_torchscript_model(self.ctx.inputs.model)
        if compiled is None:
            self.report(f'{why}; the jobs load the model with mace-torch')
        else:
            self.ctx.inputs.compiled_model = compiled
