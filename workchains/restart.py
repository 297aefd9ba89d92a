"""The shape every restarting work chain of aiida-mofal shares (aiida-quantumespresso's ``*BaseWorkChain`` shape).

A subclass sets ``_process_class`` (the CalcJob it runs) and ``_inputs_namespace`` (where it exposes that CalcJob's
inputs), exposes them in ``define``, and writes ``handle_<what>`` process handlers. :class:`RestartWorkChain`
gives it the outline (set up, run and inspect until a child succeeds or a handler gives up, attach the results)
and a ``setup`` that copies the exposed inputs into ``ctx.inputs``, where the handlers change them.
"""

from __future__ import annotations

from typing import ClassVar

from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, while_

__all__ = ('RestartWorkChain',)


class RestartWorkChain(BaseRestartWorkChain):
    """A ``BaseRestartWorkChain`` with the standard outline and ``ctx.inputs`` filled from the exposed inputs."""

    _inputs_namespace: ClassVar[str]

    @classmethod
    def define(cls, spec):
        """Set the outline: ``setup``, then ``run_process``/``inspect_process`` while needed, then ``results``."""
        super().define(spec)
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
