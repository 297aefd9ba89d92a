"""``mofal.md``: molecular dynamics with a MACE model as a remote job, and its parser.

One protocol (:mod:`aiida_mofal.md.protocol`), three engines:

* ``ase`` and ``lammps-python`` -- ``scripts/md_run.py`` runs with a ``python-mace`` code (a Python with mace-torch,
  ASE and, for ``lammps-python``, LAMMPS' Python module): CPU or GPU, anywhere;
* ``lammps-mliap`` -- a LAMMPS executable built with KOKKOS + ML-IAP + PYTHON runs the generated input
  (:mod:`aiida_mofal.md.lammps_input`) with ``pair_style mliap unified``: the GPU production route. It needs the
  model exported to ML-IAP form (``mace_create_lammps_model model --format mliap``) as input ``mliap_model``.

The parser turns the run into a ``mofal.trajectory`` node (frames + thermodynamics), the final structure, the restart
state and the integrity record (non-metal bonds broken/formed, :mod:`aiida_mofal.analysis.integrity`); failures that a
work chain can fix (blow-up, lost atoms, walltime) keep these outputs and set their own exit code.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob
from aiida.parsers import Parser

from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.md.protocol import max_temperature, validate_md_settings

__all__ = ['ENGINES', 'MdCalculation', 'MdParser', 'check_md_inputs']

SCRIPT = Path(__file__).parent / 'scripts' / 'md_run.py'
ENGINES = ('ase', 'lammps-python', 'lammps-mliap')


def check_md_inputs(structure: orm.StructureData, model: MaceModelData, settings: dict, engine: str) -> dict:
    """Refuse inputs that cannot give a result, before anything is submitted; return the validated settings.

    :raises ValueError: naming the problem and the fix (unknown engine, bad settings, elements the model does not
        know, a non-periodic or left-handed cell).
    """
    if engine not in ENGINES:
        raise ValueError(f'unknown MD engine {engine!r}; choose one of {", ".join(ENGINES)}')
    settings = validate_md_settings(settings)
    atoms = structure.get_ase()
    missing = sorted(set(atoms.get_chemical_symbols()) - set(model.elements))
    if missing:
        raise ValueError(
            f'structure {structure.pk or "(unstored)"} contains {", ".join(missing)}, which MACE model '
            f'{model.pk or "(unstored)"} (elements {", ".join(model.elements)}) cannot describe; use a model trained '
            'on these elements.'
        )
    if not atoms.pbc.all():
        raise ValueError('MD here runs periodic cells only: the structure must have pbc=(True, True, True)')
    if np.linalg.det(atoms.cell.array) <= 0:
        raise ValueError('the cell is left-handed (negative determinant); swap two cell vectors before running MD')
    if engine == 'ase' and settings['ensemble'] == 'npt' and settings['thermostat'] == 'langevin':
        if settings['barostat'] == 'anisotropic':
            raise ValueError('the ase engine has no anisotropic Langevin barostat: use nose-hoover or triclinic')
    return settings


class MdCalculation(CalcJob):
    """Run MD of one structure with one MACE model and return the frames, thermodynamics and integrity record."""

    CONFIG = 'md_input.json'
    STRUCTURE = 'structure.extxyz'
    MODEL = 'model.model'
    RESULT = 'md_result.json'
    RESTART = 'restart.npz'
    TRAJECTORY = 'trajectory.npz'
    THERMO = 'thermo.npz'
    STDOUT = 'md.out'
    STDERR = 'md.err'
    MLIAP_INPUT = 'in.lammps'
    MLIAP_DATA = 'structure.data'
    MLIAP_MODEL = 'model-mliap_lammps.pt'

    @classmethod
    def define(cls, spec):
        """Define inputs, outputs and exit codes."""
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The starting (periodic) structure.')
        spec.input('model', valid_type=MaceModelData, help='The MACE model that gives energies, forces, stress.')
        spec.input(
            'settings',
            valid_type=orm.Dict,
            help='The MD protocol (aiida_mofal.md.protocol): ensemble, schedule, timestep, dump interval, seed.',
        )
        spec.input(
            'engine',
            valid_type=orm.Str,
            default=lambda: orm.Str('ase'),
            help=f'MD engine: {", ".join(ENGINES)}.',
        )
        spec.input(
            'device', valid_type=orm.Str, default=lambda: orm.Str('cpu'), help='torch device of MACE: cpu or cuda.'
        )
        spec.input(
            'restart',
            valid_type=orm.SinglefileData,
            required=False,
            help='restart.npz of a previous run (positions, cell, velocities); the settings must be the remaining '
            'part of the schedule (aiida_mofal.md.protocol.remaining_settings).',
        )
        spec.input(
            'mliap_model',
            valid_type=orm.SinglefileData,
            required=False,
            help='lammps-mliap only: the model exported with `mace_create_lammps_model MODEL --format mliap`.',
        )
        spec.inputs.validator = cls.validate_inputs
        options = spec.inputs['metadata']['options']
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['withmpi'].default = False
        options['parser_name'].default = 'mofal.md'

        spec.output('trajectory', valid_type=MdTrajectoryData, required=False, help='Frames and thermodynamics.')
        spec.output('structure', valid_type=orm.StructureData, required=False, help='The last frame.')
        spec.output('restart', valid_type=orm.SinglefileData, required=False, help='The last good state.')
        spec.output('integrity', valid_type=orm.Dict, required=False, help='Non-metal bonds broken/formed per frame.')
        spec.output('result', valid_type=orm.Dict, required=False, help='Status, completed steps and timings.')

        spec.exit_code(300, 'ERROR_NO_RESULT', message='the MD script wrote no md_result.json: {reason}')
        spec.exit_code(301, 'ERROR_SCRIPT_FAILED', message='the MD script failed: {reason}')
        spec.exit_code(302, 'ERROR_NO_FRAMES', message='the run produced no frame at all.')
        spec.exit_code(
            310, 'ERROR_BLOWUP', message='the integration blew up (timestep too long or bad model?): {reason}'
        )
        spec.exit_code(311, 'ERROR_LOST_ATOMS', message='LAMMPS lost atoms (the integration blew up): {reason}')
        spec.exit_code(
            320, 'ERROR_NAN_IN_MODEL', message='the MACE model returned NaN/inf for a sane structure: {reason}'
        )
        spec.exit_code(330, 'ERROR_BROKEN_BONDS', message='organic bonds broke and the protocol forbids it: {reason}')
        spec.exit_code(400, 'ERROR_OUT_OF_WALLTIME', message='stopped before the walltime at step {step} of {total}.')

    @staticmethod
    def validate_inputs(value, _):
        """Check settings, engine, elements and cell before submission."""
        try:
            check_md_inputs(value['structure'], value['model'], value['settings'].get_dict(), value['engine'].value)
        except ValueError as exception:
            return str(exception)
        if value['engine'].value == 'lammps-mliap' and 'mliap_model' not in value:
            return (
                'engine lammps-mliap needs input `mliap_model`: export the model with '
                '`mace_create_lammps_model MODEL --format mliap` (needs cuequivariance-torch) and pass the '
                '*-mliap_lammps.pt file as a SinglefileData'
            )
        if value['device'].value not in ('cpu', 'cuda'):
            return f"device must be 'cpu' or 'cuda', got {value['device'].value!r}"
        return None

    def prepare_for_submission(self, folder):
        """Write the input file and structure, copy model (and restart), and run the script or LAMMPS."""
        settings = validate_md_settings(self.inputs.settings.get_dict())
        engine = self.inputs.engine.value
        atoms = self.inputs.structure.get_ase()
        if engine == 'lammps-mliap':
            return self._prepare_mliap(folder, settings, atoms)
        from ase.io import write

        buffer = io.StringIO()
        write(buffer, atoms, format='extxyz')
        with folder.open(self.STRUCTURE, 'w') as handle:
            handle.write(buffer.getvalue())
        walltime = self.inputs.metadata.options.get('max_wallclock_seconds')
        config = {
            'engine': engine,
            'settings': settings,
            'model_file': self.MODEL,
            'dtype': self.inputs.model.base.attributes.get('dtype'),
            'device': self.inputs.device.value,
            'structure_file': self.STRUCTURE,
            'restart_file': self.RESTART if 'restart' in self.inputs else None,
            'walltime_seconds': walltime,
            'torch_threads': self.inputs.metadata.options.resources.get('num_cores_per_mpiproc'),
            'max_temperature': max_temperature(settings),
        }
        with folder.open(self.CONFIG, 'w') as handle:
            json.dump(config, handle, indent=1)
        folder.insert_path(str(SCRIPT), SCRIPT.name)
        local_copy_list = [(self.inputs.model.uuid, self.inputs.model.FILENAME, self.MODEL)]
        if 'restart' in self.inputs:
            restart = self.inputs.restart
            local_copy_list.append((restart.uuid, restart.filename, self.RESTART))

        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [SCRIPT.name, self.CONFIG]
        codeinfo.stdout_name = self.STDOUT
        codeinfo.stderr_name = self.STDERR

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = local_copy_list
        calcinfo.retrieve_list = [self.RESULT, self.STDOUT, self.STDERR]
        calcinfo.retrieve_temporary_list = [self.TRAJECTORY, self.THERMO, self.RESTART]
        return calcinfo

    def _prepare_mliap(self, folder, settings: dict, atoms):
        from aiida_mofal.md import lammps_input

        elements = sorted(set(atoms.get_chemical_symbols()), key=lambda s: atoms.get_chemical_symbols().index(s))
        with folder.open(self.MLIAP_DATA, 'w') as handle:
            handle.write(lammps_input.lammps_data(atoms, elements))
        with folder.open(self.MLIAP_INPUT, 'w') as handle:
            handle.write(
                lammps_input.mliap_input(
                    settings, elements=elements, masses=lammps_input.element_masses(elements),
                    data_file=self.MLIAP_DATA, model_file=self.MLIAP_MODEL,
                )
            )  # fmt: skip
        model = self.inputs.mliap_model
        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [*lammps_input.KOKKOS_GPU_ARGS, '-in', self.MLIAP_INPUT]
        codeinfo.stdout_name = self.STDOUT
        codeinfo.stderr_name = self.STDERR
        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = [(model.uuid, model.filename, self.MLIAP_MODEL)]
        calcinfo.retrieve_list = [self.STDOUT, self.STDERR]
        calcinfo.retrieve_temporary_list = [lammps_input.DUMP_FILE, lammps_input.FRAMES_FILE, lammps_input.THERMO_FILE]
        return calcinfo


class MdParser(Parser):
    """Turn the files of ``md_run.py`` into trajectory, structure, restart, integrity and result nodes."""

    def parse(self, **kwargs):
        """Parse one MD run; failures that a work chain can fix keep their outputs and set an exit code."""
        calc = MdCalculation
        if self.node.inputs.engine.value == 'lammps-mliap':
            return self._parse_mliap(Path(kwargs.get('retrieved_temporary_folder') or '.'))
        names = self.retrieved.base.repository.list_object_names()
        if calc.RESULT not in names:
            return self.exit_codes.ERROR_NO_RESULT.format(reason=self._stderr_tail())
        result = json.loads(self.retrieved.base.repository.get_object_content(calc.RESULT))
        if result['status'] == 'error':
            lines = [line for line in result.get('message', '').splitlines() if line.strip()]
            return self.exit_codes.ERROR_SCRIPT_FAILED.format(reason=lines[-1] if lines else 'unknown error')
        temporary = Path(kwargs.get('retrieved_temporary_folder') or '.')
        settings = validate_md_settings(self.node.inputs.settings.get_dict())
        total = sum(stage['steps'] for stage in settings['schedule'])
        self.out('result', orm.Dict({**result, 'total_steps': total}))
        if (temporary / calc.RESTART).is_file():
            self.out('restart', orm.SinglefileData(temporary / calc.RESTART, filename=calc.RESTART))
        if not (temporary / calc.TRAJECTORY).is_file():
            return self.exit_codes.ERROR_NO_FRAMES
        trajectory = MdTrajectoryData.from_files(
            temporary / calc.TRAJECTORY,
            temporary / calc.THERMO,
            engine=self.node.inputs.engine.value,
            timestep=settings['timestep'],
            ensemble=settings['ensemble'],
            extra_attributes={
                'status': result['status'],
                'completed_steps': int(result['completed_steps']),
                'completed_time': float(result.get('completed_time', 0.0)),
                'total_steps': total,
                'protocol': settings.get('protocol'),
            },
        )
        self.out('trajectory', trajectory)
        self.out('structure', trajectory.get_structure(-1))
        exit_code, integrity = self._integrity(trajectory, settings)
        if integrity is not None:
            self.out('integrity', integrity)
        status, message = result['status'], result.get('message', '')
        if status == 'blowup':
            return self.exit_codes.ERROR_BLOWUP.format(reason=message)
        if status == 'lost_atoms':
            return self.exit_codes.ERROR_LOST_ATOMS.format(reason=message)
        if status == 'nan':
            return self.exit_codes.ERROR_NAN_IN_MODEL.format(reason=message)
        if exit_code is not None:
            return exit_code
        if status == 'walltime':
            return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(step=result['completed_steps'], total=total)
        return None

    def _integrity(self, trajectory: MdTrajectoryData, settings: dict):
        """Return (exit code or None, integrity Dict) from the bond graph of the input structure."""
        from aiida_mofal.analysis.integrity import bond_changes, failure_reason

        reference = self.node.inputs.structure.get_ase()
        record = bond_changes(
            reference, trajectory.get_array('positions'), trajectory.get_array('cells'), list_frames=False
        )
        record['steps'] = trajectory.get_array('steps').tolist()
        reason = failure_reason(record) if settings['fail_on_broken_bonds'] else None
        record['failed'] = reason is not None
        record['failure_reason'] = reason
        exit_code = self.exit_codes.ERROR_BROKEN_BONDS.format(reason=reason) if reason else None
        return exit_code, orm.Dict(record)

    def _stderr_tail(self) -> str:
        names = self.retrieved.base.repository.list_object_names()
        if MdCalculation.STDERR not in names:
            return 'no output and no error message'
        content = self.retrieved.base.repository.get_object_content(MdCalculation.STDERR)
        lines = [line for line in content.splitlines() if line.strip()]
        return lines[-1] if lines else 'no output and no error message'

    def _parse_mliap(self, temporary: Path):
        from aiida_mofal.md import lammps_input

        dump, thermo = temporary / lammps_input.DUMP_FILE, temporary / lammps_input.THERMO_FILE
        if not dump.is_file():
            return self.exit_codes.ERROR_NO_RESULT.format(reason=self._stderr_tail())
        settings = validate_md_settings(self.node.inputs.settings.get_dict())
        atoms = self.node.inputs.structure.get_ase()
        frames = lammps_input.read_dump(dump, settings, cell=atoms.cell.array)
        thermo_arrays = lammps_input.read_thermo(thermo) if thermo.is_file() else {}
        trajectory = MdTrajectoryData(
            frames,
            thermo_arrays,
            numbers=atoms.numbers,
            pbc=atoms.pbc,
            engine='lammps-mliap',
            timestep=settings['timestep'],
            ensemble=settings['ensemble'],
        )
        self.out('trajectory', trajectory)
        self.out('structure', trajectory.get_structure(-1))
        exit_code, integrity = self._integrity(trajectory, settings)
        self.out('integrity', integrity)
        return exit_code
