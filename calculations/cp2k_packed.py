"""``mofal.cp2k.packed``: K CP2K single points in one scheduler job, one input, output and label per structure.

The cluster paper labels ~150 clusters per cycle; as one SLURM job each they swamp a queue, and each costs
AiiDA's per-job overhead (upload, submit, poll, retrieve, parse: ~2.5 s per label here, see
``benchmarks/label_overhead.py``). This CalcJob writes the K inputs (``frame_0000.inp`` ...) into one folder,
each with its own CP2K project name so that their files never collide, and runs them inside the job's
allocation in one of two ways (``settings.calculation.farm``):

* ``farm: true`` (the default): **one** CP2K process runs the K inputs, CP2K's own FARMING mode (``farm.inp``:
  ``GLOBAL/PROGRAM FARMING`` and one ``FARMING/JOB`` per structure, each writing ``frame_<i>.out``), so the MPI
  and CP2K start-up is paid once per job, not once per structure. ``calculation.farm_groups`` G > 1 splits the
  job's MPI processes into G groups that run structures side by side. A structure that makes CP2K abort (a
  ``CPABORT``) stops the whole farm: the ones after it have no output and are reported as never run;
* ``farm: false``: AiiDA's serial code run mode, one ``mpirun cp2k -i frame_i.inp`` line per structure; a
  failed structure does not stop the next.

The parser returns one ``labels`` ArrayData holding every converged structure's label (row ``i`` is structure
``index[i]`` of ``structures``; :func:`aiida_mofal.cp2k.labels.label_rows` reads it back per structure)
and the failures by index, so "which job labelled this configuration" is still one link away, structure by
structure: one node per job instead of one per structure (K nodes to store and link cost seconds per job).

The CP2K input of each structure is :func:`aiida_mofal.cp2k.inputs.build_cp2k_parameters` of the resolved label
settings, exactly as the one-job-per-label path writes it.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob

from aiida_mofal.data import DatasetData
from aiida_mofal.remote.resources import job_mpi_processes

__all__ = ('FARM_INPUT', 'FARM_OUTPUT', 'Cp2kPackedCalculation', 'farm_input', 'frame_name', 'packed_inputs')

FARM_INPUT, FARM_OUTPUT = 'farm.inp', 'farm.out'


def frame_name(index: int) -> str:
    """Return the CP2K project name (and file stem) of structure ``index`` of the job."""
    return f'frame_{index:04d}'


def _xyz(atoms) -> str:
    lines = [str(len(atoms)), 'written by mofal.cp2k.packed']
    lines += [f'{s} {x:.10f} {y:.10f} {z:.10f}' for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions)]
    return '\n'.join(lines) + '\n'


class Cp2kPackedCalculation(CalcJob):
    """Label every structure of ``structures`` with CP2K in this one job (see the module docstring)."""

    @classmethod
    def define(cls, spec):
        """Define the inputs (structures, resolved label settings) and one label output per converged structure."""
        super().define(spec)
        spec.input('structures', valid_type=DatasetData, help='Structures to label (info: config_type, charge, ...).')
        spec.input('settings', valid_type=orm.Dict, help='Resolved label settings (protocols/label.yaml).')
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.inputs['metadata']['options']['parser_name'].default = 'mofal.cp2k.packed'
        spec.inputs.validator = cls.validate_inputs
        spec.output(
            'labels',
            valid_type=orm.ArrayData,
            required=False,
            help='Every converged structure: index (its position in `structures`), energy, natoms, forces, stress.',
        )
        spec.output('failed', valid_type=orm.Dict, required=False, help='Index → why that structure has no label.')
        spec.exit_code(450, 'ERROR_NO_LABEL', message='no structure of the job was labelled: {reason}')
        spec.exit_code(210, 'ERROR_OUTPUT_MISSING', message='no CP2K output was retrieved')

    @staticmethod
    def validate_inputs(inputs, _):
        """Refuse, before submission, structures the settings cannot label (the same check as ``mofal.label``)."""
        if 'structures' not in inputs or 'settings' not in inputs:
            return None
        from aiida_mofal.cp2k.inputs import check_labelling_input

        settings = inputs['settings'].get_dict()
        for index, atoms in enumerate(inputs['structures'].get_atoms()):
            try:
                check_labelling_input(atoms, settings, f'structure {index}')
            except ValueError as error:
                return str(error)
        return None

    def prepare_for_submission(self, folder):
        """Write one input and one coordinate file per structure (and ``farm.inp`` when farming); run them here."""
        settings = self.inputs.settings.get_dict()
        calculation = settings.get('calculation', {})
        farm = bool(calculation.get('farm', True))
        frames = self.inputs.structures.get_atoms()
        files, count = packed_inputs(frames, settings), len(frames)
        if farm:  # at most one FARMING group per MPI process
            processes = job_mpi_processes(
                self.node.get_option('resources') or {}, self.node.computer.get_default_mpiprocs_per_machine()
            )
            files[FARM_INPUT] = farm_input(count, min(int(calculation.get('farm_groups', 1)), processes))
        for name, text in files.items():
            folder.create_file_from_filelike(_io(text), name, mode='w')
        runs = (
            [(FARM_INPUT, FARM_OUTPUT)]
            if farm
            else [(f'{frame_name(i)}.inp', f'{frame_name(i)}.out') for i in range(count)]
        )
        codes_info = []
        for inp, out in runs:
            info = datastructures.CodeInfo()
            info.code_uuid = self.inputs.code.uuid
            info.cmdline_params = ['-i', inp]
            info.stdout_name = out
            info.join_files = True
            codes_info.append(info)
        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = codes_info
        calcinfo.codes_run_mode = datastructures.CodeRunMode.SERIAL
        calcinfo.retrieve_list = ['frame_*.out'] + ([FARM_OUTPUT] if farm else [])
        return calcinfo


def packed_inputs(frames, settings) -> dict[str, str]:
    """Return ``{file name: text}``: ``frame_<i>.inp`` and ``frame_<i>.xyz`` of every structure of ``frames``."""
    from aiida_cp2k.utils import Cp2kInput

    from aiida_mofal.cp2k.inputs import build_cp2k_parameters

    files = {}
    for index, atoms in enumerate(frames):
        name = frame_name(index)
        parameters = Cp2kInput(build_cp2k_parameters(atoms, settings))
        parameters.add_keyword('GLOBAL/PROJECT', name)
        if atoms.info.get('config_type', 'periodic') == 'periodic':
            for row, letter in zip(atoms.cell.array, 'ABC'):
                parameters.add_keyword(f'FORCE_EVAL/SUBSYS/CELL/{letter}', ' '.join(f'{v:.10f}' for v in row))
        parameters.add_keyword('FORCE_EVAL/SUBSYS/TOPOLOGY/COORD_FILE_NAME', f'{name}.xyz')
        parameters.add_keyword('FORCE_EVAL/SUBSYS/TOPOLOGY/COORD_FILE_FORMAT', 'XYZ')
        files[f'{name}.inp'] = parameters.render()
        files[f'{name}.xyz'] = _xyz(atoms)
    return files


def farm_input(count: int, groups: int = 1) -> str:
    """Return CP2K's FARMING input that runs ``frame_0000.inp`` ... in one process, output ``frame_<i>.out`` each.

    ``groups`` working groups share the job's MPI processes (``NGROUPS``); one group runs the structures one
    after the other with all processes, as the one-``mpirun``-per-structure mode does.
    """
    jobs = ''.join(
        f'  &JOB\n    JOB_ID {index + 1}\n    INPUT_FILE_NAME {frame_name(index)}.inp\n'
        f'    OUTPUT_FILE_NAME {frame_name(index)}.out\n  &END JOB\n'
        for index in range(count)
    )
    return (
        '&GLOBAL\n  PROJECT farm\n  PROGRAM FARMING\n  RUN_TYPE NONE\n&END GLOBAL\n'
        f'&FARMING\n  NGROUPS {groups}\n{jobs}&END FARMING\n'
    )


def _io(text: str):
    import io

    return io.StringIO(text)
