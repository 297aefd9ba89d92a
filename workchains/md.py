"""MD with MACE that survives what MD really does: blow-ups, lost atoms, walltime; one trajectory for the whole run."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, calcfunction, process_handler, while_

from aiida_mofal.calculations.md import ENGINES, MdCalculation, check_md_inputs
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.data.trajectory import FRAME_ARRAYS, MdTrajectoryData
from aiida_mofal.md.protocol import load_md_settings, remaining_settings, validate_md_settings

__all__ = ('MdBaseWorkChain', 'join_trajectories')


@calcfunction
def join_trajectories(structure: orm.StructureData, settings: orm.Dict, **segments: MdTrajectoryData) -> dict:
    """Join the segments of one restarted run (``segment_0``, ``segment_1``, ...) into one trajectory + integrity.

    Segment ``k`` continued from the last good state of segment ``k-1``: its steps and times are shifted by the
    steps and time completed before it, and its first frame is dropped when it repeats the previous last frame.
    """
    from aiida_mofal.analysis.integrity import bond_changes, failure_reason

    ordered = [segments[key] for key in sorted(segments, key=lambda name: int(name.rsplit('_', 1)[1]))]
    arrays: dict[str, list[np.ndarray]] = {key: [] for key in FRAME_ARRAYS}
    thermo: dict[str, list[np.ndarray]] = {}
    step_offset, time_offset, last_step = 0, 0.0, None
    for segment in ordered:
        frames = {key: segment.get_array(key) for key in segment.get_arraynames()}
        steps = frames['steps'] + step_offset
        keep = np.ones(len(steps), dtype=bool)
        if last_step is not None and len(steps) and steps[0] == last_step:
            keep[0] = False
        for key in FRAME_ARRAYS:
            if key in frames:
                value = frames[key][keep]
                if key == 'steps':
                    value = steps[keep]
                elif key == 'times':
                    value = value + time_offset
                arrays[key].append(value)
        segment_thermo = segment.get_thermo()
        if segment_thermo:
            keep_thermo = np.ones(len(segment_thermo['step']), dtype=bool)
            previous = thermo['step'][-1] if thermo else ()
            if len(previous) and len(keep_thermo) and segment_thermo['step'][0] + step_offset == previous[-1]:
                keep_thermo[0] = False
            for key, value in segment_thermo.items():
                value = value[keep_thermo]
                if key == 'step':
                    value = value + step_offset
                elif key == 'time':
                    value = value + time_offset
                thermo.setdefault(key, []).append(value)
        if len(steps):
            last_step = int(steps[keep][-1]) if keep.any() else last_step
        step_offset += int(segment.base.attributes.get('completed_steps', 0))
        time_offset += float(segment.base.attributes.get('completed_time', 0.0))
    joined = {key: np.concatenate(value) for key, value in arrays.items() if value}
    first = ordered[0]
    trajectory = MdTrajectoryData(
        joined,
        {key: np.concatenate(value) for key, value in thermo.items()},
        numbers=first.numbers,
        pbc=first.pbc,
        engine=first.engine,
        timestep=first.base.attributes.get('timestep', None),
        ensemble=first.base.attributes.get('ensemble', ''),
        extra_attributes={
            'segments': len(ordered),
            'completed_steps': step_offset,
            'completed_time': time_offset,
            'status': ordered[-1].base.attributes.get('status', None),
            'protocol': first.base.attributes.get('protocol', None),
        },
    )
    record = bond_changes(structure.get_ase(), joined['positions'], joined['cells'], list_frames=False)
    record['steps'] = joined['steps'].tolist()
    reason = failure_reason(record) if settings['fail_on_broken_bonds'] else None
    record['failed'] = reason is not None
    record['failure_reason'] = reason
    return {'trajectory': trajectory, 'integrity': orm.Dict(record)}


class MdBaseWorkChain(BaseRestartWorkChain):
    """Run an ``MdCalculation`` to the end of its protocol, restarting it when it fails in a way that can be fixed.

    Handlers, each naming the error it fixes:

    * ``handle_blowup`` (310 blow-up, 311 lost atoms): halve the timestep (and double the steps, so simulated time and
      ramp rates stay those of the protocol) and continue from the last good state; after ``max_halvings`` halvings
      give up (``ERROR_BLOWUP_UNRECOVERABLE``).
    * ``handle_out_of_walltime`` (400): continue the rest of the schedule from the last good state.
    * ``handle_nan_in_model`` (320): a NaN from the model for a sane structure is not fixed by a restart: stop with
      ``ERROR_NAN_IN_MODEL`` (retrain or check the model).
    * ``handle_broken_bonds`` (330): the protocol forbids broken linkers: stop with ``ERROR_BROKEN_BONDS``.

    Outputs: the ``trajectory`` of the whole run (segments joined by :func:`join_trajectories` when it restarted),
    its ``integrity`` record, and the final ``structure``.
    """

    _process_class = MdCalculation

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.expose_inputs(MdCalculation, namespace='md')
        spec.input(
            'max_halvings',
            valid_type=orm.Int,
            default=lambda: orm.Int(3),
            help='How many times a blow-up may halve the timestep before the work chain gives up.',
        )
        spec.output('trajectory', valid_type=MdTrajectoryData, help='Frames and thermodynamics of the whole run.')
        spec.output('structure', valid_type=orm.StructureData, help='The last frame.')
        spec.output('integrity', valid_type=orm.Dict, required=False, help='Non-metal bonds broken/formed per frame.')
        spec.output('restart', valid_type=orm.SinglefileData, required=False, help='The last good state.')
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.exit_code(
            310, 'ERROR_BLOWUP_UNRECOVERABLE', message='the MD still blew up after halving the timestep {count} times.'
        )
        spec.exit_code(320, 'ERROR_NAN_IN_MODEL', message='the MACE model returned NaN/inf: {message}')
        spec.exit_code(330, 'ERROR_BROKEN_BONDS', message='organic bonds broke and the protocol forbids it: {message}')

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structure: orm.StructureData,
        model: MaceModelData,
        protocol: str | None = 'explore',
        overrides: Mapping[str, Any] | None = None,
        engine: str = 'ase',
        options: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        """Return a builder for ``structure`` with ``model`` from an MD protocol of ``protocols/md.yaml``.

        :param overrides: MD settings that replace the protocol's (unknown keys are refused; a ``schedule`` replaces
            the whole list); validated with the inputs before anything is submitted.
        :param engine: one of ``ase``, ``lammps-python``, ``lammps-mliap``.
        :param options: CalcJob options (resources, ``max_wallclock_seconds``, ...).
        :raises ValueError: for an unknown protocol, override, engine, or inputs that cannot run.
        """
        settings = load_md_settings(protocol, overrides)
        if engine not in ENGINES:
            raise ValueError(f'unknown MD engine {engine!r}; choose one of {", ".join(ENGINES)}')
        check_md_inputs(structure, model, settings, engine)
        builder = cls.get_builder()
        builder.md.code = code
        builder.md.structure = structure
        builder.md.model = model
        builder.md.settings = orm.Dict(settings)
        builder.md.engine = orm.Str(engine)
        builder.md.metadata.options = {
            'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1},
            **copy.deepcopy(dict(options or {})),
        }
        for key, value in kwargs.items():
            setattr(builder, key, value)
        return builder

    def setup(self):
        """Copy the exposed inputs; the settings of the next run start as the protocol's."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(MdCalculation, 'md'))
        self.ctx.settings = validate_md_settings(self.ctx.inputs.settings.get_dict())
        self.ctx.halvings = 0
        self.ctx.segments = []

    def _continue_from(self, node: orm.CalcJobNode, timestep_factor: float) -> None:
        """Set up the next run: the rest of the schedule from the last good state of ``node``."""
        completed = int(node.outputs.result['completed_steps']) if 'result' in node.outputs else 0
        if 'trajectory' in node.outputs and completed > 0:
            self.ctx.segments.append(node.outputs.trajectory)
        if completed > 0 and 'restart' in node.outputs:
            self.ctx.inputs.restart = node.outputs.restart
        else:
            completed = 0  # nothing usable was done: run this segment again from where it started
        self.ctx.settings = remaining_settings(self.ctx.settings, completed, timestep_factor)
        self.ctx.inputs.settings = orm.Dict(self.ctx.settings)

    @process_handler(
        priority=500,
        exit_codes=[MdCalculation.exit_codes.ERROR_BLOWUP, MdCalculation.exit_codes.ERROR_LOST_ATOMS],
    )
    def handle_blowup(self, node):
        """Fix a blow-up or lost atoms (310, 311): halve the timestep and continue from the last good state."""
        if self.ctx.halvings >= self.inputs.max_halvings.value:
            self.report(f'{node.process_label}<{node.pk}> blew up again after {self.ctx.halvings} halvings')
            exit_code = self.exit_codes.ERROR_BLOWUP_UNRECOVERABLE.format(count=self.ctx.halvings)
            return ProcessHandlerReport(True, exit_code)
        self.ctx.halvings += 1
        old = self.ctx.settings['timestep']
        self._continue_from(node, 0.5)
        self.report(
            f'{node.process_label}<{node.pk}> blew up ({node.exit_message}); timestep {old} -> '
            f'{self.ctx.settings["timestep"]} fs, continuing from the last good frame'
        )
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=[MdCalculation.exit_codes.ERROR_OUT_OF_WALLTIME])
    def handle_out_of_walltime(self, node):
        """Fix the walltime stop (400): continue the rest of the schedule from the last good state."""
        self._continue_from(node, 1.0)
        self.report(f'{node.process_label}<{node.pk}> stopped for the walltime; continuing from its last state')
        return ProcessHandlerReport(True)

    @process_handler(priority=300, exit_codes=[MdCalculation.exit_codes.ERROR_NAN_IN_MODEL])
    def handle_nan_in_model(self, node):
        """Stop on NaN from the model (320): a restart cannot fix the model."""
        return ProcessHandlerReport(True, self.exit_codes.ERROR_NAN_IN_MODEL.format(message=node.exit_message))

    @process_handler(priority=200, exit_codes=[MdCalculation.exit_codes.ERROR_BROKEN_BONDS])
    def handle_broken_bonds(self, node):
        """Stop on broken linkers (330) when the protocol forbids them, keeping the record for inspection."""
        if 'integrity' in node.outputs:
            self.out('integrity', node.outputs.integrity)
        return ProcessHandlerReport(True, self.exit_codes.ERROR_BROKEN_BONDS.format(message=node.exit_message))

    def results(self):
        """Attach one trajectory for the whole run (joined when it was restarted), its integrity and last frame."""
        node = self.ctx.children[self.ctx.iteration - 1]
        outputs = node.outputs
        if self.ctx.segments:
            segments = {f'segment_{index}': segment for index, segment in enumerate(self.ctx.segments)}
            segments[f'segment_{len(self.ctx.segments)}'] = outputs.trajectory
            joined = join_trajectories(structure=self.inputs.md.structure, settings=self.inputs.md.settings, **segments)
            self.out('trajectory', joined['trajectory'])
            self.out('integrity', joined['integrity'])
        else:
            self.out('trajectory', outputs.trajectory)
            if 'integrity' in outputs:
                self.out('integrity', outputs.integrity)
        self.out('structure', outputs.structure)
        if 'restart' in outputs:
            self.out('restart', outputs.restart)
        self.report(f'MD finished after {self.ctx.iteration} run(s), {len(self.ctx.segments) + 1} segment(s)')
