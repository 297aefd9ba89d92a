"""MD that survives what MD really does (blow-ups, lost atoms, walltime), walk by walk; one trajectory per walk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiida import orm
from aiida.common import LinkType
from aiida.engine import ProcessHandlerReport

from aiida_mofal.calculations.md import ENGINES, MdCalculation, check_md_inputs, walks_of
from aiida_mofal.calculations.md_segments import join_trajectories
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.md.protocol import load_md_settings, remaining_settings

from .restart import RestartWorkChain, TorchScriptJobs, handler_for, serial_options

__all__ = ('MdBaseWorkChain', 'walk_finished_ok', 'walk_outputs')

WALK_OUTPUTS = ('trajectory', 'structure', 'integrity', 'restart', 'charges')
UNRECOVERABLE = {'nan': 'ERROR_NAN_IN_MODEL', 'broken_bonds': 'ERROR_BROKEN_BONDS'}


class MdBaseWorkChain(TorchScriptJobs, RestartWorkChain):
    """Run the walks of an ``MdCalculation`` to the end of their protocols, continuing each walk that can be fixed.

    One job runs every unfinished walk; after it, each walk is continued on its own (a finished walk is never run
    again). Handlers, each naming the job's exit code it fixes (the most severe of its walks'), treat every walk:

    * ``handle_blowup`` (310 blow-up, 311 lost atoms): the walks that blew up get half the timestep (and twice the
      steps, so simulated time and ramp rates stay those of the protocol) and continue from their last good state;
      after ``max_halvings`` halvings a walk is given up (``ERROR_BLOWUP_UNRECOVERABLE`` at the end).
    * ``handle_out_of_walltime`` (400): the unfinished walks continue the rest of their schedules from their last
      good state (walks that had not started start again).
    * ``handle_nan_in_model`` (320): a NaN from the model for a sane structure is not fixed by a restart: that walk
      stops, the others go on, and the work chain ends with ``ERROR_NAN_IN_MODEL``.
    * ``handle_broken_bonds`` (330): the protocol forbids broken linkers: that walk stops (its record is kept), the
      others go on, and the work chain ends with ``ERROR_BROKEN_BONDS``.

    Outputs: for one walk ``trajectory`` (segments joined by
    :func:`~aiida_mofal.calculations.md_segments.join_trajectories` when it restarted), ``integrity``, ``structure``
    and ``restart``; for several walks the same under ``walks.<name>``, each trajectory with its ``walk`` index,
    ``seed`` and targets in its attributes.
    """

    _process_class = MdCalculation
    _inputs_namespace = 'md'

    @classmethod
    def define(cls, spec):
        """Define the process specification (the inputs of ``MdCalculation`` under ``md``)."""
        super().define(spec)
        spec.input(
            'max_halvings',
            valid_type=orm.Int,
            default=lambda: orm.Int(3),
            help='How many times a blow-up may halve the timestep of a walk before the work chain gives it up.',
        )
        cls.define_torchscript(spec)
        spec.output(
            'trajectory', valid_type=MdTrajectoryData, required=False, help='Frames and thermodynamics (one walk).'
        )
        spec.output('structure', valid_type=orm.StructureData, required=False, help='The last frame (one walk).')
        spec.output('integrity', valid_type=orm.Dict, required=False, help='Bonds broken/formed per frame.')
        spec.output('restart', valid_type=orm.SinglefileData, required=False, help='The last good state.')
        spec.output('charges', valid_type=orm.ArrayData, required=False, help='ReaxFF: QEq charges per frame.')
        spec.output_namespace('walks', dynamic=True, help='Several walks: the outputs above per walk.')
        spec.exit_code(
            310, 'ERROR_BLOWUP_UNRECOVERABLE', message='walk(s) {walks} still blew up after {count} halvings.'
        )
        for label in UNRECOVERABLE.values():  # a walk that ends so ends the work chain with its job's exit code
            exit_code = MdCalculation.exit_codes[label]
            spec.exit_code(exit_code.status, label, message=exit_code.message)

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
        walks: Sequence[Mapping[str, Any]] | None = None,
        **kwargs,
    ):
        """Return a builder for ``structure`` with ``model`` from an MD protocol of ``protocols/md.yaml``.

        :param overrides: MD settings that replace the protocol's (unknown keys are refused; a ``schedule`` replaces
            the whole list); validated with the inputs before anything is submitted.
        :param engine: one of ``ase``, ``lammps-python``, ``lammps-mliap``.
        :param options: CalcJob options (resources, ``max_wallclock_seconds``, ...).
        :param walks: several walks in one job: per walk, overrides on top of ``overrides`` (e.g. ``{'seed': 3,
            'schedule': [...]}``) and optionally its own ``structure``; walk ``i`` is ``walks.walk_i`` with index i.
        :raises ValueError: for an unknown protocol, override, engine, or inputs that cannot run.
        """
        builder = cls.get_builder()
        cls._set_walks(builder, structure, protocol, overrides, walks, model, engine)
        builder.md.code = code
        builder.md.model = model
        builder.md.engine = orm.Str(engine)
        builder.md.metadata.options = serial_options(options)
        for key, value in kwargs.items():
            setattr(builder, key, value)
        return builder

    @staticmethod
    def _set_walks(builder, structure, protocol, overrides, walks, model, engine, load=load_md_settings) -> None:
        """Fill ``builder.md`` with one walk (no ``walks``) or the namespace ``walks``, each checked first."""
        if engine not in ENGINES:
            raise ValueError(f'unknown MD engine {engine!r}; choose one of {", ".join(ENGINES)}')
        entries = [{}] if walks is None else [dict(walk) for walk in walks]
        if not entries:
            raise ValueError('walks is empty: give at least one walk (or None for a single walk)')
        namespace = {}
        for index, entry in enumerate(entries):
            start = entry.pop('structure', structure)
            settings = load(protocol, {**dict(overrides or {}), **entry})
            if settings is not None:
                check_md_inputs(start, model, settings, engine)
            walk = {'structure': start, **({'settings': orm.Dict(settings)} if settings is not None else {})}
            namespace[f'walk_{index}'] = {**walk, 'index': orm.Int(index)}
        if walks is None:
            for key, value in namespace['walk_0'].items():
                if key != 'index':
                    setattr(builder.md, key, value)
        else:
            builder.md.walks = namespace

    def setup(self):
        """Copy the exposed inputs (``RestartWorkChain.setup``) and set up the state of every walk."""
        super().setup()
        walks = walks_of(self.ctx.inputs)
        originals = {walk['name']: (self.ctx.inputs.walks[walk['name']] if walk['name'] else self.ctx.inputs)
                     for walk in walks}  # fmt: skip
        self.ctx.walks = [
            {**walk, 'original_settings': originals[walk['name']].get('settings'), 'segments': [], 'last': {},
             'halvings': 0, 'state': 'running', 'message': ''}
            for walk in walks
        ]  # fmt: skip
        self.ctx.single = walks[0]['name'] is None
        if self.wants_torchscript() and self.ctx.inputs.engine.value in ('ase', 'lammps-python'):
            self.compile_model()

    def run_process(self):
        """Run one job with every unfinished walk, each from its own state."""
        self._next_inputs()
        return super().run_process()

    def _next_inputs(self) -> None:
        """Put every unfinished walk (structure, settings, restart, index) into the inputs of the next job."""
        inputs = self.ctx.inputs
        for key in ('structure', 'settings', 'restart', 'walks'):
            inputs.pop(key, None)
        running = [walk for walk in self.ctx.walks if walk['state'] == 'running']
        namespace = {}
        for walk in running:
            ports = {'structure': walk['structure']}
            if walk['settings'] is not None:
                ports['settings'] = orm.Dict(walk['settings'])
            if walk['restart'] is not None:
                ports['restart'] = walk['restart']
            if self.ctx.single:
                inputs.update(ports)
            else:
                namespace[walk['name']] = {**ports, 'index': orm.Int(walk['index'])}
        if namespace:
            inputs.walks = namespace

    def _walk_outputs(self, links: dict, walk: dict) -> dict:
        """Return a walk's outputs among a job's output ``links`` (label -> node; one query per job, not per key)."""
        prefix = '' if self.ctx.single else f'walks__{walk["name"]}__'
        return {key: links[prefix + key] for key in WALK_OUTPUTS if prefix + key in links}

    def _continue_walks(self, node: orm.CalcJobNode, blowup_factor: float = 0.5) -> ProcessHandlerReport:
        """Update every walk of ``node`` from its status; the next job runs those that can go on."""
        links = {link.link_label: link.node for link in node.base.links.get_outgoing(link_type=LinkType.CREATE).all()}
        results = {walk['index']: walk for walk in links['result']['walks']} if 'result' in links else {}
        for walk in (walk for walk in self.ctx.walks if walk['state'] == 'running'):
            result = results.get(walk['index'], {'status': 'walltime', 'completed_steps': 0, 'message': ''})
            outputs = self._walk_outputs(links, walk)
            status, completed = result['status'], int(result['completed_steps'])
            if status == 'finished':
                walk.update(state='done', last=outputs)
                walk['segments'].append(outputs)
            elif status in UNRECOVERABLE:
                walk.update(state=status, last=outputs, message=result['message'])
                walk['segments'].append(outputs)
            elif status in ('blowup', 'lost_atoms') and walk['halvings'] >= self.inputs.max_halvings.value:
                walk.update(state='blowup', last=outputs, message=result['message'])
            else:
                walk['message'] = result['message']
                factor = blowup_factor if status in ('blowup', 'lost_atoms') else self._timestep_factor(walk, status)
                walk['halvings'] += int(factor < 1.0)
                self._advance(walk, outputs, completed, factor)
                self.report(f'walk {walk["index"]}: {status} after {completed} steps ({result["message"]}); '
                            f'continuing with timestep {walk["settings"]["timestep"]} fs')  # fmt: skip
        if all(walk['state'] != 'running' for walk in self.ctx.walks):
            self.ctx.is_finished = True
        return ProcessHandlerReport(True)

    def _timestep_factor(self, walk: dict, status: str) -> float:
        """Return the timestep factor with which a walk continues after ``status`` (1: the same timestep)."""
        return 1.0

    def _advance(self, walk: dict, outputs: dict, completed: int, factor: float) -> None:
        """Set up the rest of a walk's schedule from its last good state (``completed`` steps done)."""
        if completed > 0 and 'trajectory' in outputs and 'restart' in outputs:
            walk['segments'].append(outputs)
            walk['restart'] = outputs['restart']
        else:
            completed = 0  # nothing usable was done: run this segment again from where it started
        if walk['settings'] is not None:
            walk['settings'] = remaining_settings(walk['settings'], completed, factor)

    @handler_for(MdCalculation, 'ERROR_BLOWUP', 'ERROR_LOST_ATOMS', priority=500)
    def handle_blowup(self, node):
        """Fix a blow-up or lost atoms (310, 311): halve the timestep of those walks and continue each one."""
        return self._continue_walks(node)

    @handler_for(MdCalculation, 'ERROR_OUT_OF_WALLTIME', priority=400)
    def handle_out_of_walltime(self, node):
        """Fix the walltime stop (400): continue every unfinished walk from its last good state."""
        return self._continue_walks(node)

    @handler_for(MdCalculation, 'ERROR_NAN_IN_MODEL', priority=300)
    def handle_nan_in_model(self, node):
        """Stop the walk whose model gave NaN (320): a restart cannot fix the model; the other walks go on."""
        return self._continue_walks(node)

    @handler_for(MdCalculation, 'ERROR_BROKEN_BONDS', priority=200)
    def handle_broken_bonds(self, node):
        """Stop the walk with broken linkers (330) when the protocol forbids them, keeping its record."""
        return self._continue_walks(node)

    def _final_outputs(self, walk: dict) -> dict:
        """Return the outputs of a walk: those of its last job, with its segments joined when it restarted."""
        outputs = dict(walk['last'])
        segments = [segment for segment in walk['segments'] if 'trajectory' in segment]
        if len(segments) > 1:
            nodes = {f'trajectory_{k}': segment['trajectory'] for k, segment in enumerate(segments)}
            nodes.update(
                {f'charges_{k}': segment['charges'] for k, segment in enumerate(segments) if 'charges' in segment}
            )
            outputs.update(join_trajectories(structure=walk['structure'], settings=walk['original_settings'], **nodes))
        return outputs

    def results(self):
        """Attach each walk's outputs; end with the exit code of a walk that could not be finished, if any."""
        node = self.ctx.children[self.ctx.iteration - 1]
        if node.is_finished_ok:  # no handler ran: take the finished walks of the last job
            self._continue_walks(node)
        namespace = {}
        for walk in self.ctx.walks:
            outputs = self._final_outputs(walk)
            if self.ctx.single:
                for key, value in outputs.items():
                    self.out(key, value)
            else:
                namespace[walk['name']] = outputs
        if namespace:
            self.out('walks', namespace)
        failed = [walk for walk in self.ctx.walks if walk['state'] not in ('done', 'running')]
        self.report(
            f'MD of {len(self.ctx.walks)} walk(s) ended after {self.ctx.iteration} job(s); {len(failed)} failed'
        )
        for walk in failed:
            if walk['state'] in UNRECOVERABLE:
                return self.exit_codes[UNRECOVERABLE[walk['state']]].format(reason=walk['message'])
        if failed:
            return self._given_up(failed)
        return None

    def _given_up(self, failed: list[dict]):
        """Return the exit code of walks given up after blow-ups (subclasses add their own failures)."""
        walks = ', '.join(str(walk['index']) for walk in failed)
        return self.exit_codes.ERROR_BLOWUP_UNRECOVERABLE.format(walks=walks, count=self.inputs.max_halvings.value)


def walk_outputs(node: orm.ProcessNode, record: Mapping) -> Mapping:
    """Return the outputs of walk ``record['walk']`` of an MD work chain or job ``node`` (empty: it gave none).

    A job of several walks has them under ``walks``; the walk is found by the ``walk`` index its trajectory
    records, never by its link label. A job of one walk has them at the top.
    """
    if 'walks' not in node.outputs:
        return node.outputs
    for outputs in node.outputs.walks.values():
        if 'trajectory' in outputs and outputs['trajectory'].base.attributes.get('walk', None) == record['walk']:
            return outputs
    return {}


def walk_finished_ok(node: orm.ProcessNode, record: Mapping) -> bool:
    """Whether walk ``record['walk']`` of MD work chain ``node`` ran to its end (a failed one may hold such walks)."""
    if node.is_finished_ok:
        return True
    outputs = walk_outputs(node, record)
    if 'trajectory' not in outputs:
        return False
    failed = 'integrity' in outputs and outputs['integrity'].get_dict().get('failed', False)
    return outputs['trajectory'].base.attributes.get('status', None) == 'finished' and not failed
