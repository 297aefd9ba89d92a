"""``mofal.md``: molecular dynamics as one remote job — one or several walks, MACE or ReaxFF.

One protocol (:mod:`aiida_mofal.md.protocol`), four engines:

* ``ase`` and ``lammps-python`` -- MACE; ``scripts/md_run.py`` runs with a ``python-mace`` code (a Python with
  mace-torch, ASE and, for ``lammps-python``, LAMMPS' Python module): CPU or GPU, anywhere;
* ``lammps-reaxff`` -- ReaxFF + QEq in LAMMPS' Python module, the same script (no torch, no MACE), inputs
  ``force_field`` (a ReaxFF ``ffield``), optional ``control`` and ``reaxff`` (QEq, minimisation);
* ``lammps-mliap`` -- a LAMMPS executable built with KOKKOS + ML-IAP + PYTHON runs the generated input
  (:mod:`aiida_mofal.md.mliap`) with ``pair_style mliap unified``: the GPU production route. It needs the model
  exported to ML-IAP form (``mace_create_lammps_model model --format mliap``) as input ``mliap_model``.

A job runs one walk (inputs ``structure``, ``settings``, ``restart``; outputs ``trajectory``, ``structure``, ...) or
several walks of one model one after the other (input namespace ``walks.<name>`` with ``structure``, ``settings``,
``restart``, ``index``; outputs ``walks.<name>.trajectory``, ...), paying the interpreter, imports and model load once.
Each walk's trajectory carries its ``walk`` index, ``seed`` and first-stage targets as attributes: code reads those,
never the link label. The script imports the pure modules shipped beside it as package ``mofal_md``
(:data:`SHIPPED_MODULES`), so the remote needs no aiida-mofal. The parser is :mod:`aiida_mofal.calculations.parsers.md`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from aiida import orm

from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.md import driver, dynamics, gate, job, lammps, mliap, reaxff, schedule, torchscript, units
from aiida_mofal.md.protocol import validate_md_settings
from aiida_mofal.mlp import features
from aiida_mofal.uncertainty import gmm

from .script import SCRIPTS, MaceScriptCalculation, file_copy, write_model

__all__ = [
    'ENGINES',
    'SHIPPED_MODULES',
    'MdCalculation',
    'check_md_inputs',
    'ship_driver',
    'walk_attributes',
    'walks_of',
]

SCRIPT = SCRIPTS / 'md_run.py'
ENGINES = ('ase', 'lammps-python', 'lammps-reaxff', 'lammps-mliap')
SHIPPED_MODULES = {
    'md_lammps.py': SCRIPTS / 'md_lammps.py',
    **{f'mofal_md/{module.__name__.rsplit(".", 1)[1]}.py': Path(module.__file__)
       for module in (driver, dynamics, features, gate, gmm, lammps, reaxff, schedule, torchscript, units)},
}  # fmt: skip
"""What travels beside ``md_run.py``: its LAMMPS engines and the pure MD modules, as the package ``mofal_md``."""


def ship_driver(directory: str | Path) -> None:
    """Copy ``md_run.py``, its LAMMPS engines and the pure MD modules (as the package ``mofal_md``) into ``directory``.

    What a job's working directory holds besides its inputs; the driver then needs no aiida-mofal.
    """
    directory = Path(directory)
    (directory / 'mofal_md').mkdir(parents=True, exist_ok=True)
    (directory / 'mofal_md' / '__init__.py').write_text(
        '"""Pure MD modules of aiida-mofal, shipped beside md_run.py."""\n'
    )
    for name, source in {SCRIPT.name: SCRIPT, **SHIPPED_MODULES}.items():
        shutil.copyfile(source, directory / name)


def check_md_inputs(structure: orm.StructureData, model: MaceModelData, settings: dict, engine: str) -> dict:
    """Refuse inputs that cannot give a result, before anything is submitted; return the validated settings.

    :raises ValueError: naming the problem and the fix (unknown engine, bad settings, elements the model does not
        know, a non-periodic or left-handed cell).
    """
    if engine not in ENGINES:
        raise ValueError(f'unknown MD engine {engine!r}; choose one of {", ".join(ENGINES)}')
    settings = validate_md_settings(settings)
    atoms = structure.get_ase()
    if model is not None:
        model.require_elements(atoms.get_chemical_symbols(), what=f'structure {structure.pk or "(unstored)"}')
    if not atoms.pbc.all():
        raise ValueError('MD here runs periodic cells only: the structure must have pbc=(True, True, True)')
    if np.linalg.det(atoms.cell.array) <= 0:
        raise ValueError('the cell is left-handed (negative determinant); swap two cell vectors before running MD')
    if engine == 'ase' and settings['ensemble'] == 'npt' and settings['thermostat'] == 'langevin':
        if settings['barostat'] == 'anisotropic':
            raise ValueError('the ase engine has no anisotropic Langevin barostat: use nose-hoover or triclinic')
    return settings


WALK_KEYS = {'structure', 'settings', 'restart', 'index'}


def _index(walk) -> int:
    return int(walk['index'].value) if 'index' in walk else -1


def walks_of(inputs) -> list[dict]:
    """Return the walks of a job's inputs, in the order the script runs them.

    One dict per walk with ``name`` (``None`` for the single walk of top-level inputs), ``index``, ``directory``,
    ``structure``, ``settings`` (a validated dict, or ``None`` for a ReaxFF minimisation only) and ``restart``.
    """
    specs = []
    if 'walks' in inputs and inputs['walks']:
        for name, walk in inputs['walks'].items():
            unknown = sorted(set(walk) - WALK_KEYS) if isinstance(walk, Mapping) else ['(not a namespace)']
            if unknown or 'structure' not in walk:
                raise ValueError(f'walks.{name} needs a structure and takes only {sorted(WALK_KEYS)}; got {unknown}')
        names = sorted(inputs['walks'], key=lambda name: (_index(inputs['walks'][name]), name))
        specs = [(name, inputs['walks'][name]) for name in names]
    elif 'structure' in inputs:
        specs = [(None, inputs)]
    walks = []
    for position, (name, walk) in enumerate(specs):
        settings = walk['settings'] if 'settings' in walk else None
        walks.append({
            'name': name,
            'index': position if _index(walk) < 0 else _index(walk),
            'directory': job.walk_directory(position),
            'structure': walk['structure'],
            'settings': None if settings is None else validate_md_settings(settings.get_dict()),
            'restart': walk['restart'] if 'restart' in walk else None,
        })  # fmt: skip
    return walks


class MdCalculation(MaceScriptCalculation):
    """Run MD walks of one model (MACE or ReaxFF) in one job; return frames, thermodynamics and integrity records.

    A :class:`~aiida_mofal.calculations.script.ScriptCalculation` whose configuration and per-walk files
    :func:`aiida_mofal.md.job.write_job` writes, and which ships the package ``mofal_md`` (:func:`ship_driver`).
    """

    SCRIPT = SCRIPT
    SHIPPED_MODULES = SHIPPED_MODULES
    CONFIG = job.CONFIG
    DENSITY = 'density_model.npz'
    RESULT = 'md_result.json'
    STDOUT = 'md.out'
    STDERR = 'md.err'
    MLIAP_INPUT = 'in.lammps'
    MLIAP_DATA = 'structure.data'
    MLIAP_MODEL = 'model-mliap_lammps.pt'
    WALK_FILES = ('trajectory.npz', 'thermo.npz', 'restart.npz')

    @classmethod
    def define(cls, spec):
        """Define inputs, outputs and exit codes."""
        super().define(spec)
        walk_ports = (
            ('structure', orm.StructureData, 'The starting (periodic) structure.'),
            ('settings', orm.Dict, 'The MD protocol (aiida_mofal.md.protocol); absent: a ReaxFF minimisation only.'),
            ('restart', orm.SinglefileData, 'restart.npz of a previous run; settings must be the remaining part '
                                            '(aiida_mofal.md.protocol.remaining_settings).'),
        )  # fmt: skip
        for name, valid_type, help_text in walk_ports:
            spec.input(name, valid_type=valid_type, required=False, help=f'Single walk: {help_text}')
        spec.input_namespace(
            'walks',
            dynamic=True,
            required=False,
            valid_type=(orm.StructureData, orm.Dict, orm.SinglefileData, orm.Int),
            help='Several walks: walks.<name>.structure, .settings, .restart (as the single-walk inputs) and .index '
            '(the walk index recorded in its outputs).',
        )
        cls.define_model(spec, required=False, help='MACE model (engines ase, lammps-*).')
        cls.define_potential_files(spec)
        spec.input('reaxff', valid_type=orm.Dict, required=False, help='lammps-reaxff: qeq and minimize parameters.')
        spec.input('engine', valid_type=orm.Str, default=lambda: orm.Str('ase'), help=f'One of {", ".join(ENGINES)}.')
        spec.input(
            'density_model', valid_type=orm.Data, required=False, help="Gated exploration: the model's density model."
        )
        spec.input(
            'gate',
            valid_type=orm.Dict,
            required=False,
            help='Gated exploration (engine ase): {unknown_fraction, every}; a walk ends at the first checked frame '
            'with that fraction of unknown atoms (aiida_mofal.md.gate).',
        )
        spec.inputs['metadata']['options']['parser_name'].default = 'mofal.md'

        outputs = (
            ('trajectory', MdTrajectoryData, 'Frames and thermodynamics.'),
            ('structure', orm.StructureData, 'The last frame.'),
            ('restart', orm.SinglefileData, 'The last good state.'),
            ('integrity', orm.Dict, 'Non-metal bonds broken/formed per frame.'),
            ('charges', orm.ArrayData, 'lammps-reaxff: QEq charges (e) of every frame.'),
        )
        spec.output_namespace('walks', dynamic=True, help='Per walk (input walks.<name>): the outputs below.')
        for name, valid_type, help_text in outputs:
            spec.output(name, valid_type=valid_type, required=False, help=help_text)
        spec.output('result', valid_type=orm.Dict, required=False, help='Status, completed steps, timings per walk.')

        cls.define_script_exit_codes(spec, script='MD', result=cls.RESULT)
        spec.exit_code(302, 'ERROR_NO_FRAMES', message='the run produced no frame at all.')
        spec.exit_code(
            310, 'ERROR_BLOWUP', message='the integration blew up (timestep too long or bad model?): {reason}'
        )
        spec.exit_code(311, 'ERROR_LOST_ATOMS', message='LAMMPS lost atoms (the integration blew up): {reason}')
        spec.exit_code(312, 'ERROR_QEQ_NOT_CONVERGED', message='the ReaxFF charges (QEq) did not converge: {reason}')
        spec.exit_code(
            320, 'ERROR_NAN_IN_MODEL', message='the MACE model returned NaN/inf for a sane structure: {reason}'
        )
        spec.exit_code(330, 'ERROR_BROKEN_BONDS', message='organic bonds broke and the protocol forbids it: {reason}')
        spec.exit_code(400, 'ERROR_OUT_OF_WALLTIME', message='stopped before the walltime at step {step} of {total}.')

    @staticmethod
    def define_potential_files(spec) -> None:
        """Declare the potential files of the LAMMPS engines (also inputs of work chains that pass them on)."""
        spec.input('force_field', valid_type=orm.SinglefileData, required=False, help='lammps-reaxff: the ffield.')
        spec.input('control', valid_type=orm.SinglefileData, required=False, help='lammps-reaxff: control file.')
        spec.input('mliap_model', valid_type=orm.SinglefileData, required=False, help='lammps-mliap: ML-IAP model.')

    @classmethod
    def validate_inputs(cls, value, ctx):
        """Check engine, potential, settings, elements and cells of every walk before submission."""
        engine = value['engine'].value
        if 'walks' in value and value['walks'] and 'structure' in value:
            return 'give either `structure`/`settings`/`restart` (one walk) or the namespace `walks`, not both'
        try:
            walks = walks_of(value)
            if not walks:
                return 'no walk: give `structure` and `settings`, or the namespace `walks`'
            if engine == 'lammps-reaxff':
                from aiida_mofal.calculations.reaxff import check_reaxff_inputs

                check_reaxff_inputs(value, walks)
            elif 'model' not in value:
                return f'engine {engine} needs input `model` (a mofal.mace_model)'
            for walk in walks:
                if walk['settings'] is None and engine != 'lammps-reaxff':
                    return f'walk {walk["index"]} has no settings; only lammps-reaxff may minimise without MD'
                if walk['settings'] is not None:
                    check_md_inputs(walk['structure'], value.get('model'), walk['settings'], engine)
        except ValueError as exception:
            return str(exception)
        if engine == 'lammps-mliap' and ('mliap_model' not in value or len(walks) > 1):
            return (
                'engine lammps-mliap runs one walk and needs input `mliap_model`: export the model with '
                '`mace_create_lammps_model MODEL --format mliap` (needs cuequivariance-torch) and pass the '
                '*-mliap_lammps.pt file as a SinglefileData'
            )
        error = _check_gate(value, engine)
        if error:
            return error
        if value['device'].value not in ('cpu', 'cuda'):
            return f"device must be 'cpu' or 'cuda', got {value['device'].value!r}"
        return None

    def prepare_for_submission(self, folder):
        """Write the walks' structures and the configuration, ship the script and its modules, copy the inputs."""
        engine = self.inputs.engine.value
        walks = walks_of(self.inputs)
        if engine == 'lammps-mliap':
            return self._prepare_mliap(folder, walks[0])
        local_copy_list, config = [], {'walltime_seconds': self.inputs.metadata.options.get('max_wallclock_seconds')}
        for walk in walks:
            if walk['restart'] is not None:
                target = f'{walk["directory"]}/{job.RESTART}'
                local_copy_list.append(file_copy(walk['restart'], walk['restart'].filename, target))
        if engine == 'lammps-reaxff':
            from aiida_mofal.calculations.reaxff import reaxff_config

            extra, copies = reaxff_config(self.inputs)
            config['reaxff'] = extra
            local_copy_list += copies
        else:
            config.update(self.model_config(folder, local_copy_list))
            if 'gate' in self.inputs:  # the features need MACE's own module, also beside a TorchScript archive
                if 'compiled_model' in self.inputs:
                    write_model(folder, self.inputs.model, self.MODEL)
                self.inputs.density_model.write(Path(folder.abspath) / self.DENSITY)
                config['gate'] = {**self.inputs.gate.get_dict(), 'feature_model': self.MODEL,
                                  'density_model': self.DENSITY}  # fmt: skip
        specs = [
            {**walk, 'atoms': walk['structure'].get_ase(), 'restart': walk['restart'] is not None} for walk in walks
        ]
        job.write_job(folder.abspath, engine, specs, **config)
        return self.script_calcinfo(
            folder,
            None,
            local_copy_list=local_copy_list,
            retrieve_list=[self.RESULT],
            retrieve_temporary_list=[(f'walk_*/{name}', '.', 2) for name in self.WALK_FILES],
            provenance_exclude_list=[self.MODEL],
        )

    def ship(self, folder) -> None:
        """Copy ``md_run.py``, its LAMMPS engines and the package ``mofal_md`` (:func:`ship_driver`)."""
        ship_driver(folder.abspath)

    def _prepare_mliap(self, folder, walk: dict):
        atoms = walk['structure'].get_ase()
        symbols = atoms.get_chemical_symbols()
        elements = sorted(set(symbols), key=symbols.index)
        masses = [float(atoms.get_masses()[symbols.index(symbol)]) for symbol in elements]
        with folder.open(self.MLIAP_DATA, 'w') as handle:
            handle.write(lammps.lammps_data(atoms, elements, masses))
        with folder.open(self.MLIAP_INPUT, 'w') as handle:
            handle.write(mliap.mliap_input(walk['settings'], elements=elements, data_file=self.MLIAP_DATA,
                                           model_file=self.MLIAP_MODEL))  # fmt: skip
        model = self.inputs.mliap_model
        return self.script_calcinfo(
            folder,
            None,
            local_copy_list=[file_copy(model, model.filename, self.MLIAP_MODEL)],
            retrieve_temporary_list=[mliap.DUMP_FILE, mliap.FRAMES_FILE, mliap.THERMO_FILE],
            cmdline_params=[*mliap.KOKKOS_GPU_ARGS, '-in', self.MLIAP_INPUT],
        )


def _check_gate(value, engine: str) -> str | None:
    """Refuse a gate that cannot run: another engine, no density model, a threshold outside (0, 1]."""
    if 'gate' not in value and 'density_model' not in value:
        return None
    if 'gate' not in value or 'density_model' not in value:
        return 'gated exploration needs both `gate` and `density_model`'
    if engine != 'ase':
        return f'gated exploration runs with engine ase only, not {engine}'
    settings = value['gate'].get_dict()
    unknown = sorted(set(settings) - {'unknown_fraction', 'every'})
    if unknown:
        return f'gate takes unknown_fraction and every only; got {unknown}'
    fraction, every = settings.get('unknown_fraction'), settings.get('every', 1)
    if not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
        return f'gate.unknown_fraction must be in (0, 1], got {fraction!r}'
    if not isinstance(every, int) or every < 1:
        return f'gate.every must be a positive integer (dumped frames between checks), got {every!r}'
    density, model = value['density_model'], value.get('model')
    if not hasattr(density, 'check_model'):
        return f'density_model must be a mofal.density_model, got {type(density).__name__}'
    try:
        if model is not None:
            density.check_model(model)  # features of one model only
    except ValueError as error:
        return str(error)
    return None


def walk_attributes(walk: dict) -> dict:
    """Return what a walk's trajectory records about the walk: index, seed, first-stage targets, protocol."""
    settings = walk['settings'] or {}
    first = (settings.get('schedule') or [{}])[0]
    return {
        'walk': walk['index'],
        'seed': settings.get('seed'),
        'temperature': first.get('temperature'),
        'pressure': first.get('pressure'),
        'protocol': settings.get('protocol'),
        'total_steps': schedule.total_steps(settings) if settings else 0,
    }
