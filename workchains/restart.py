"""The shape every restarting work chain of aiida-mofal shares (aiida-quantumespresso's ``*BaseWorkChain`` shape).

A subclass sets ``_process_class`` (the CalcJob it runs) and ``_inputs_namespace`` (where that CalcJob's inputs are
exposed), and writes ``handle_<what>`` process handlers. :class:`RestartWorkChain` exposes those inputs and
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
