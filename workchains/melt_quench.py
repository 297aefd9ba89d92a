"""``mofal.melt_quench``: ZIF glasses by melt-quenching a crystal supercell (Castel & Coudert, SCIENCE.md §7).

The crystal is repeated (2×2×2 by default, the paper's 2176 atoms for ZIF-4) and taken through the five stages of
:mod:`aiida_mofal.md.melt_quench` (equilibrate, heat, plateau, quench, measure). Each stage is one restartable MD
segment, an :class:`~aiida_mofal.workchains.md.MdBaseWorkChain` (MACE: engines ``ase``, ``lammps-python``,
``lammps-mliap``) or :class:`~aiida_mofal.workchains.reaxff.ReaxffMdWorkChain` (the ReaxFF baseline,
``lammps-reaxff``), that continues from the previous stage's restart state (velocities and thermostat included), so
a walltime stop or a blow-up is fixed inside the stage and a daemon restart resumes at the stage it stopped in.

After every stage ``stage_integrity`` compares its frames with the crystal's non-metal bond graph. A broken (or,
with ``fail_on_formed``, a new) non-metal bond fails the stage with ``ERROR_LINKER_BROKEN``, whose message names the
bonds; ``handle_broken_linkers`` then runs the replica again from the end of its equilibration with the protocol's
``fallback`` (the paper's T_max 1400 K and 100 ps plateau). ``replicas: N`` makes N glasses, replica k starting from
velocities of seed ``seed + k``; replicas run side by side (one job each), each through its own stages.

Outputs per glass, under ``glasses.replica_<k>``: ``structure`` (the last frame), ``trajectory`` (the measurement
stage, the frames analysed), ``integrity`` (every stage's record and the failed attempts) and ``analysis``
(:func:`~aiida_mofal.analysis.glass.analyse_glass` as a calcfunction, against the crystal). The earlier stages'
trajectories are the outputs of the stage work chains.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from aiida import orm
from aiida.engine import ToContext, WorkChain, while_

from aiida_mofal.calculations.md import ENGINES, MdCalculation
from aiida_mofal.calculations.melt_quench import (
    analyse_glass_trajectory,
    make_supercell,
    merge_integrity,
    stage_integrity,
)
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.md.melt_quench import (
    check_metal_ligand_pairs,
    fallback_parameters,
    load_melt_quench_parameters,
    stage_settings,
    supercell_size,
    validate_melt_quench_parameters,
)

from .md import MdBaseWorkChain
from .reaxff import ReaxffMdWorkChain
from .restart import TorchScriptJobs, serial_options

__all__ = ('MeltQuenchWorkChain', 'check_melt_quench_inputs')

MACE_ENGINES = ('ase', 'lammps-python', 'lammps-mliap')


def check_melt_quench_inputs(
    structure: orm.StructureData,
    supercell: Sequence[int],
    parameters: Mapping[str, Any],
    engine: str,
    model: MaceModelData | None = None,
    force_field: orm.SinglefileData | None = None,
    replicas: int = 1,
    mliap_model: orm.SinglefileData | None = None,
) -> dict:
    """Refuse a melt-quench that cannot give a glass, before anything is stored or submitted; return the parameters.

    :raises ValueError: naming the problem and the fix: a schedule out of range (a T_max of 15000 K is a unit slip),
        no metal–ligand pairs for a ZIF protocol, elements of the supercell that the model or force field lacks, an
        engine without its potential, a non-periodic cell, fewer than one replica.
    """
    parameters = validate_melt_quench_parameters(parameters)
    size = supercell_size(supercell)
    if engine not in ENGINES:
        raise ValueError(f'unknown MD engine {engine!r}; choose one of {", ".join(ENGINES)}')
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f'replicas must be a positive number of glasses, got {replicas!r}')
    atoms = structure.get_ase()
    if not atoms.pbc.all():
        raise ValueError('a melt-quench runs a periodic crystal: the structure needs a cell and pbc=(True, True, True)')
    check_metal_ligand_pairs(atoms, parameters['metal'], parameters['ligand'], parameters['cutoff'])
    elements = sorted(set(atoms.get_chemical_symbols()))
    count = len(atoms) * size[0] * size[1] * size[2]
    what = f'the {"x".join(map(str, size))} supercell of {atoms.get_chemical_formula()} ({count} atoms)'
    if engine == 'lammps-mliap' and mliap_model is None:
        raise ValueError(
            'engine lammps-mliap needs the model in ML-IAP form: export it with `mace_create_lammps_model MODEL '
            '--format mliap` and pass the *-mliap_lammps.pt file (mliap_model, or --mliap-model)'
        )
    if engine == 'lammps-reaxff':
        from aiida_mofal.md.reaxff import force_field_species

        if force_field is None or model is not None:
            raise ValueError('engine lammps-reaxff needs a ReaxFF force field and no MACE model (use --reaxff)')
        species = force_field_species(force_field.get_content())
        missing = [element for element in elements if element not in species]
        if missing:
            raise ValueError(f'{what} contains {", ".join(missing)}, which the ReaxFF force field lacks ({species})')
    else:
        if model is None or force_field is not None:
            raise ValueError(f'engine {engine} runs a MACE model: give model (a mofal.mace_model) and no force field')
        model.require_elements(elements, what=what)
    return parameters


class MeltQuenchWorkChain(WorkChain):
    """Melt-quench a crystal supercell into N glasses, stage by stage, each stage checked for broken linkers."""

    @classmethod
    def define(cls, spec):
        """Define inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The crystal (unit cell) to melt and quench.')
        spec.input('supercell', valid_type=orm.List, default=lambda: orm.List([2, 2, 2]), help='Repetitions a, b, c.')
        spec.input('parameters', valid_type=orm.Dict, help='Melt-quench parameters (protocols/melt_quench.yaml).')
        spec.input('replicas', valid_type=orm.Int, default=lambda: orm.Int(1), help='Glasses from different seeds.')
        spec.input('code', valid_type=orm.AbstractCode, help='The Python (or LAMMPS for lammps-mliap) that runs MD.')
        spec.input('engine', valid_type=orm.Str, default=lambda: orm.Str('lammps-python'), help=', '.join(ENGINES))
        spec.input('model', valid_type=MaceModelData, required=False, help='MACE model (MACE engines).')
        MdCalculation.define_potential_files(spec)  # mliap_model, force_field, control: passed on to the MD jobs
        spec.input('reaxff', valid_type=orm.Dict, required=False, help='lammps-reaxff: qeq (and minimize: stage 1).')
        spec.input('options', valid_type=orm.Dict, required=False, help='CalcJob options of every MD job.')
        spec.input('max_halvings', valid_type=orm.Int, default=lambda: orm.Int(3), help='Per stage, on blow-ups.')
        TorchScriptJobs.define_torchscript(spec)  # passed on to every stage's MD work chain
        spec.inputs.validator = cls.validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.should_run_stage)(cls.run_stage, cls.inspect_stage),
            cls.analyse,
            cls.results,
        )
        spec.output('supercell', valid_type=orm.StructureData, help='The crystal supercell that was melted.')
        spec.output_namespace('glasses', dynamic=True, help='replica_<k>: structure, trajectory, integrity, analysis.')
        spec.exit_code(
            340, 'ERROR_LINKER_BROKEN',
            message='replica {replica}, stage {stage}: non-metal bonds changed: {reason}',
        )  # fmt: skip
        spec.exit_code(
            341, 'ERROR_STAGE_MD_FAILED', message='replica {replica}, stage {stage}: MD failed: [{status}] {message}'
        )

    @staticmethod
    def validate_inputs(value, _):
        """Run :func:`check_melt_quench_inputs` on the launch inputs (the same checks as the builder)."""
        try:
            check_melt_quench_inputs(
                value['structure'], value['supercell'].get_list() if 'supercell' in value else [2, 2, 2],
                value['parameters'].get_dict(), value['engine'].value if 'engine' in value else 'lammps-python',
                value.get('model'), value.get('force_field'), value['replicas'].value if 'replicas' in value else 1,
                value.get('mliap_model'),
            )  # fmt: skip
        except ValueError as exception:
            return str(exception)
        return None

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structure: orm.StructureData,
        model: MaceModelData | None = None,
        protocol: str | None = 'melt_quench',
        overrides: Mapping[str, Any] | None = None,
        *,
        engine: str | None = None,
        supercell: Sequence[int] = (2, 2, 2),
        replicas: int = 1,
        force_field: orm.SinglefileData | None = None,
        control: orm.SinglefileData | None = None,
        reaxff: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        mliap_model: orm.SinglefileData | None = None,
    ):
        """Return a builder for a melt-quench of ``structure`` with a MACE ``model`` or a ReaxFF ``force_field``.

        :param protocol: ``melt_quench`` (the paper) or ``smoke`` (the same stages in 1,500 steps).
        :param overrides: parameters replacing the protocol's (unknown keys are refused), e.g. ``{'max_temperature':
            1400.0, 'fallback': None}``.
        :param engine: default ``lammps-python`` with a model, ``lammps-reaxff`` with a force field.
        :param reaxff: ReaxFF ``qeq`` and ``minimize`` (minimisation before the first stage only).
        :param mliap_model: engine ``lammps-mliap``: the model exported to ML-IAP form (``code`` is then LAMMPS).
        :raises ValueError: for anything :func:`check_melt_quench_inputs` refuses, before anything is stored.
        """
        from aiida_mofal.md.reaxff import validate_reaxff_parameters

        engine = engine or ('lammps-reaxff' if force_field is not None else 'lammps-python')
        parameters = load_melt_quench_parameters(protocol, overrides)
        check_melt_quench_inputs(structure, supercell, parameters, engine, model, force_field, replicas, mliap_model)
        builder = cls.get_builder()
        builder.structure = structure
        builder.supercell = orm.List(list(supercell))
        builder.parameters = orm.Dict(parameters)
        builder.replicas = orm.Int(replicas)
        builder.code = code
        builder.engine = orm.Str(engine)
        if model is not None:
            builder.model = model
        if mliap_model is not None:
            builder.mliap_model = mliap_model
        if force_field is not None:
            builder.force_field = force_field
            builder.reaxff = orm.Dict(validate_reaxff_parameters(reaxff))
            if control is not None:
                builder.control = control
        if options:
            builder.options = orm.Dict(dict(options))
        return builder

    # -- the stages ----------------------------------------------------------------------------------------------

    def setup(self):
        """Build the supercell and the stage plan of every replica."""
        self.ctx.supercell = make_supercell(self.inputs.structure, self.inputs.supercell)
        parameters = self.inputs.parameters.get_dict()
        self.ctx.replicas = [self._plan(index, parameters) for index in range(self.inputs.replicas.value)]
        self.ctx.attempts = []
        names = ', '.join(self.ctx.replicas[0]['stages'])
        self.report(f'{len(self.ctx.replicas)} replica(s) of {len(self.ctx.supercell.sites)} atoms; stages {names}')

    def _plan(self, index: int, parameters: dict, fallback: bool = False) -> dict:
        seed = parameters['seed'] + index
        settings = stage_settings(parameters, seed=seed)
        return {
            'index': index, 'seed': seed, 'parameters': parameters, 'settings': settings, 'stages': list(settings),
            'position': 0, 'structure': self.ctx.supercell, 'restart': None, 'equilibrated': None,
            'records': {}, 'trajectories': {}, 'last': None, 'fallback': fallback, 'state': 'running', 'message': '',
        }  # fmt: skip

    def should_run_stage(self) -> bool:
        """Return whether a replica has a stage left to run."""
        return any(replica['state'] == 'running' for replica in self.ctx.replicas)

    def _stage_inputs(self, replica: dict) -> tuple[type, dict]:
        """Return the MD work chain and its inputs for the current stage of ``replica``."""
        stage = replica['stages'][replica['position']]
        engine = self.inputs.engine.value
        options = serial_options(self.inputs.get('options'))
        md = {
            'code': self.inputs.code, 'structure': replica['structure'], 'engine': orm.Str(engine),
            'settings': orm.Dict(replica['settings'][stage]), 'metadata': {'options': options},
        }  # fmt: skip
        if replica['restart'] is not None:
            md['restart'] = replica['restart']
        if engine == 'lammps-reaxff':
            reaxff = self.inputs.reaxff.get_dict()
            if replica['position'] > 0 or replica['restart'] is not None:
                reaxff['minimize'] = None  # minimise the crystal once, before the first stage
            md.update(force_field=self.inputs.force_field, reaxff=orm.Dict(reaxff))
            if 'control' in self.inputs:
                md['control'] = self.inputs.control
            return ReaxffMdWorkChain, {'md': md, 'max_halvings': self.inputs.max_halvings}
        md['model'] = self.inputs.model
        if 'mliap_model' in self.inputs:
            md['mliap_model'] = self.inputs.mliap_model
        return MdBaseWorkChain, {'md': md, 'max_halvings': self.inputs.max_halvings,
                                 'torchscript': self.inputs.torchscript}  # fmt: skip

    def run_stage(self):
        """Submit the current stage of every running replica (side by side: one MD work chain each)."""
        futures = {}
        for replica in self.ctx.replicas:
            if replica['state'] != 'running':
                continue
            process, inputs = self._stage_inputs(replica)
            stage = replica['stages'][replica['position']]
            label = f'replica_{replica["index"]}_{stage}' + ('_fallback' if replica['fallback'] else '')
            inputs['metadata'] = {'call_link_label': label}
            future = futures[f'replica_{replica["index"]}'] = self.submit(process, **inputs)
            self.report(f'replica {replica["index"]}: stage {stage} submitted as {label} <{future.pk}>')
        return ToContext(**futures)

    def inspect_stage(self):
        """Check each stage that ran: its MD, then its linkers against the crystal; advance or hand to a handler."""
        for replica in self.ctx.replicas:
            if replica['state'] != 'running':
                continue
            child = self.ctx[f'replica_{replica["index"]}']
            stage = replica['stages'][replica['position']]
            record = None
            if 'trajectory' in child.outputs:  # also of a failed stage: a broken linker often ends in a blow-up
                record = stage_integrity(
                    self.ctx.supercell, child.outputs.trajectory,
                    orm.Dict({'fail_on_formed': replica['parameters']['fail_on_formed']}),
                    metadata={'call_link_label': f'integrity_replica_{replica["index"]}_{stage}'},
                )  # fmt: skip
            if record is not None and record['failed']:
                self.handle_broken_linkers(replica, stage, record)
            elif not child.is_finished_ok or record is None:
                replica.update(state='md_failed', stage=stage, status=child.exit_status,
                               message=child.exit_message or 'no trajectory')  # fmt: skip
                self.report(f'replica {replica["index"]}, stage {stage}: MD failed [{child.exit_status}]')
            else:
                self._advance(replica, stage, child, record)

    def _advance(self, replica: dict, stage: str, child, record: orm.Dict) -> None:
        """Take a stage that passed: the next one starts from its last frame and restart state.

        ``lammps-mliap`` jobs return no restart state: their next stage starts from the last frame with new
        Maxwell-Boltzmann velocities at the stage's first temperature (the thermostat chain starts again).
        """
        restart = child.outputs.restart if 'restart' in child.outputs else None
        replica['records'][stage] = record
        replica['trajectories'][stage] = child.outputs.trajectory
        replica.update(structure=child.outputs.structure, restart=restart, last=child.outputs.structure)
        if stage == 'equilibrate':
            replica['equilibrated'] = (child.outputs.structure, restart)
        replica['position'] += 1
        if replica['position'] == len(replica['stages']):
            replica['state'] = 'done'

    def handle_broken_linkers(self, replica: dict, stage: str, record: orm.Dict) -> None:
        """Fix ``ERROR_LINKER_BROKEN`` of a stage: the replica again from its equilibrated crystal, with the fallback.

        The fallback (the protocol's ``fallback``, by default the paper's T_max 1400 K with a 100 ps plateau) replaces
        the hot stages only; it is tried once per replica. A linker that breaks in the equilibration at the low
        temperature, or again under the fallback, is not fixed by a cooler melt: the replica fails with the exit code.
        """
        reason = record['failure_reason']
        code = self.exit_codes.ERROR_LINKER_BROKEN
        self.report(f'replica {replica["index"]}, stage {stage} failed [{code.status}] ERROR_LINKER_BROKEN: {reason}')
        self.ctx.attempts.append({'replica': replica['index'], 'stage': stage, 'exit_status': code.status,
                                  'reason': reason, 'fallback': replica['fallback'],
                                  'max_temperature': replica['parameters']['max_temperature'],
                                  'integrity': record.pk})  # fmt: skip
        fallback = None if replica['fallback'] else fallback_parameters(replica['parameters'])
        if fallback is None or stage == 'equilibrate':
            why = 'it broke in the equilibration' if stage == 'equilibrate' else 'no fallback is left'
            replica.update(state='broken', stage=stage, message=f'{reason} ({why})')
            return
        plan = self._plan(replica['index'], fallback, fallback=True)
        plan['records'] = {key: value for key, value in replica['records'].items() if key == 'equilibrate'}
        plan['trajectories'] = {k: v for k, v in replica['trajectories'].items() if k == 'equilibrate'}
        if replica['equilibrated'] is not None:
            plan['structure'], plan['restart'] = replica['equilibrated']
            plan['equilibrated'] = replica['equilibrated']
            plan['position'] = plan['stages'].index('heat')
        replica.clear()
        replica.update(plan)
        changed = {key: fallback[key] for key in replica['parameters'] if key in self.inputs.parameters['fallback']}
        start = 'its equilibrated crystal' if replica['equilibrated'] is not None else 'the crystal'
        self.report(f'handle_broken_linkers: replica {replica["index"]} again from {start} with {changed}')

    # -- the glasses -----------------------------------------------------------------------------------------

    def analyse(self):
        """Analyse the measurement frames of every glass (a calcfunction: the analysis is in the graph)."""
        analysis = self._analysis_settings()
        for replica in self.ctx.replicas:
            if replica['state'] != 'done':
                continue
            replica['analysis'] = analyse_glass_trajectory(
                replica['trajectories']['measure'], orm.Dict(analysis), self.ctx.supercell,
                metadata={'call_link_label': f'analysis_replica_{replica["index"]}'},
            )  # fmt: skip

    def _analysis_settings(self) -> dict:
        parameters = self.inputs.parameters
        return {'pairs': parameters['pairs'], 'metal': parameters['metal'], 'ligand': parameters['ligand'],
                'cutoff': parameters['cutoff'], 'temperature': parameters['low_temperature']}  # fmt: skip

    def results(self):
        """Attach every glass; end with the exit code of a replica that gave none."""
        self.out('supercell', self.ctx.supercell)
        glasses = {}
        for replica in self.ctx.replicas:
            if replica['state'] != 'done':
                continue
            attempts = [a for a in self.ctx.attempts if a['replica'] == replica['index']]
            integrity = merge_integrity(
                attempts=orm.List(copy.deepcopy(attempts)), **replica['records'],
                metadata={'call_link_label': f'integrity_replica_{replica["index"]}'},
            )  # fmt: skip
            glasses[f'replica_{replica["index"]}'] = {
                'structure': replica['last'], 'trajectory': replica['trajectories']['measure'],
                'integrity': integrity, 'analysis': replica['analysis'],
            }  # fmt: skip
        if glasses:
            self.out('glasses', glasses)
        failed = len(self.ctx.attempts)
        self.report(f'{len(glasses)} of {len(self.ctx.replicas)} glass(es) made; {failed} stage(s) broke linkers')
        for replica in self.ctx.replicas:
            if replica['state'] == 'broken':
                return self.exit_codes.ERROR_LINKER_BROKEN.format(
                    replica=replica['index'], stage=replica['stage'], reason=replica['message']
                )
            if replica['state'] == 'md_failed':
                return self.exit_codes.ERROR_STAGE_MD_FAILED.format(
                    replica=replica['index'], stage=replica['stage'], status=replica['status'],
                    message=replica['message'],
                )  # fmt: skip
        return None
