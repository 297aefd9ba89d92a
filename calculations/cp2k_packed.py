"""``mofal.cp2k.packed``: K CP2K single points in one scheduler job, one input, output and label per structure.

The cluster paper labels ~150 clusters per cycle; as one SLURM job each they swamp a queue, and each costs
AiiDA's per-job overhead (upload, submit, poll, retrieve, parse: ~2.5 s per label here, see
``benchmarks/label_overhead.py``). This CalcJob writes the K inputs (``frame_0000.inp`` ...) into one folder,
each with its own CP2K project name so that their files never collide, and runs them one after the other inside
the job's allocation (AiiDA's serial code run mode: one ``mpirun cp2k`` line per structure, a failed one does
not stop the next). The parser returns one ``labels.frame_<i>`` ArrayData per converged structure and the
failures by index, so "which job labelled this configuration" is still one link away, structure by structure.

The CP2K input of each structure is :func:`aiida_mofal.cp2k.inputs.build_cp2k_parameters` of the resolved label
settings, exactly as the one-job-per-label path writes it.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob

from aiida_mofal.data import DatasetData

__all__ = ('Cp2kPackedCalculation', 'frame_name')


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
        spec.output_namespace('labels', valid_type=orm.ArrayData, dynamic=True, help='frame_<i>: energy, forces, ...')
        spec.output('frames', valid_type=orm.Dict, help='Output label → index of its structure in `structures`.')
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
        """Write one input and one coordinate file per structure; run them in series in this job."""
        from aiida_cp2k.utils import Cp2kInput

        from aiida_mofal.cp2k.inputs import build_cp2k_parameters

        settings = self.inputs.settings.get_dict()
        code = self.inputs.code
        codes_info = []
        for index, atoms in enumerate(self.inputs.structures.get_atoms()):
            name = frame_name(index)
            parameters = Cp2kInput(build_cp2k_parameters(atoms, settings))
            parameters.add_keyword('GLOBAL/PROJECT', name)
            if atoms.info.get('config_type', 'periodic') == 'periodic':
                for row, letter in zip(atoms.cell.array, 'ABC'):
                    parameters.add_keyword(f'FORCE_EVAL/SUBSYS/CELL/{letter}', ' '.join(f'{v:.10f}' for v in row))
            parameters.add_keyword('FORCE_EVAL/SUBSYS/TOPOLOGY/COORD_FILE_NAME', f'{name}.xyz')
            parameters.add_keyword('FORCE_EVAL/SUBSYS/TOPOLOGY/COORD_FILE_FORMAT', 'XYZ')
            folder.create_file_from_filelike(_io(parameters.render()), f'{name}.inp', mode='w')
            folder.create_file_from_filelike(_io(_xyz(atoms)), f'{name}.xyz', mode='w')
            info = datastructures.CodeInfo()
            info.code_uuid = code.uuid
            info.cmdline_params = ['-i', f'{name}.inp']
            info.stdout_name = f'{name}.out'
            info.join_files = True
            codes_info.append(info)
        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = codes_info
        calcinfo.codes_run_mode = datastructures.CodeRunMode.SERIAL
        calcinfo.retrieve_list = ['frame_*.out']
        return calcinfo


def _io(text: str):
    import io

    return io.StringIO(text)
