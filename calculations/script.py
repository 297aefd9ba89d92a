"""One base for the CalcJobs that run a stand-alone Python driver script with a JSON configuration.

``mofal.mace.train``, ``mofal.mace.evaluate`` and ``mofal.md`` all run a script of ``calculations/scripts/`` with a
``python-mace`` code (a Python with mace-torch and ASE, never AiiDA) as ``python <script> <config>``. What they
share lives here:

* :class:`ScriptCalculation` writes the configuration as JSON (no shell quoting can change it), copies the driver
  script and the pure modules it imports beside it (so the remote runs exactly the code of the science layer
  without aiida-mofal installed), copies input files from the repository of stored nodes (``local_copy_list``,
  e.g. the model), and fills the code info, standard output/error names and retrieve lists.
* :class:`MaceScriptCalculation` adds, for a driver that runs a MACE model (``mofal.md``, ``mofal.relax``), the
  inputs ``model``, ``compiled_model`` and ``device`` and puts the model into the job folder.
* :class:`ScriptParser` reads retrieved files without raising on a missing one, the last line of standard
  error for an exit message a human can act on, and the JSON result a driver writes however it ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob, ExitCode
from aiida.parsers import Parser

from aiida_mofal.data.mace_model import MaceModelData

__all__ = [
    'NO_MESSAGE',
    'MaceScriptCalculation',
    'ScriptCalculation',
    'ScriptParser',
    'file_copy',
    'last_line',
    'write_model',
]

NO_MESSAGE = 'no output and no error message'
SCRIPTS = Path(__file__).parent / 'scripts'


def last_line(text: str | None, default: str = NO_MESSAGE) -> str:
    """Return the last non-blank line of ``text`` (stripped), or ``default``."""
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    return lines[-1] if lines else default


def write_model(folder, model, target: str) -> str:
    """Write MACE's own file of ``model`` (a ``mofal.mace_model``) into the sandbox ``folder`` as ``target``.

    The file is made here from the node's weights-only form (``MaceModelData.write``), never copied from the
    repository, so a job never loads a pickle that came from the database or an imported archive. It is left out
    of the job's stored inputs (the model node is the provenance) to store no copy per job.
    """
    model.write(Path(folder.abspath) / target)
    return target


def file_copy(node: orm.Data, filename: str, target: str) -> tuple[str, str, str]:
    """Return the ``local_copy_list`` entry that copies ``filename`` of a stored ``node`` to ``target``."""
    return (node.uuid, filename, target)


class ScriptCalculation(CalcJob):
    """Run ``SCRIPT`` with a Python code as ``python SCRIPT CONFIG``; subclasses say what goes into the config.

    Class attributes a subclass sets: ``SCRIPT`` (path of the driver), ``SHIPPED_MODULES`` (name beside the
    script → source file of a pure module it imports), ``CONFIG``, ``STDOUT``, ``STDERR`` (file names).
    A subclass validates its inputs in :meth:`validate_inputs` (before AiiDA's own CalcJob checks, so that the
    message a user sees names their input).
    """

    SCRIPT: ClassVar[Path]
    SHIPPED_MODULES: ClassVar[Mapping[str, Path]] = {}
    CONFIG: ClassVar[str] = 'config.json'
    STDOUT: ClassVar[str] = 'aiida.out'
    STDERR: ClassVar[str] = 'aiida.err'

    @classmethod
    def define(cls, spec):
        """Run serially by default: one process on one machine, no MPI launcher (the script parallelises itself)."""
        super().define(spec)
        options = spec.inputs['metadata']['options']
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['withmpi'].default = False
        calcjob_validator = spec.inputs.validator

        def validate(inputs, ctx):
            own = cls.validate_inputs(inputs, ctx)
            return own or (calcjob_validator(inputs, ctx) if calcjob_validator else None)

        spec.inputs.validator = validate

    @classmethod
    def validate_inputs(cls, inputs, ctx) -> str | None:
        """Return an error message for inputs that cannot give a result, or None (override in subclasses)."""
        return None

    def ship(self, folder) -> None:
        """Copy the driver script and the pure modules it imports into the job's ``folder``."""
        folder.insert_path(str(self.SCRIPT), self.SCRIPT.name)
        for name, source in self.SHIPPED_MODULES.items():
            folder.insert_path(str(source), name)

    def script_calcinfo(
        self,
        folder,
        config: Mapping | None,
        *,
        local_copy_list: Iterable[tuple[str, str, str]] = (),
        remote_copy_list: Iterable[tuple[str, str, str]] = (),
        retrieve_list: Iterable[str] = (),
        retrieve_temporary_list: Iterable[str] = (),
        cmdline_params: Iterable[str] | None = None,
        provenance_exclude_list: Iterable[str] = (),
    ) -> datastructures.CalcInfo:
        """Write ``config``, ship the script and its modules, and return the filled ``CalcInfo``.

        ``config=None``: the subclass wrote its configuration itself (and ``cmdline_params``, when given, replace
        ``SCRIPT CONFIG``: a job whose code is not Python, e.g. a LAMMPS executable, ships nothing).
        Standard output and error are always retrieved (the parsers read the error's last line on failure).
        """
        if config is not None:
            with folder.open(self.CONFIG, 'w') as handle:
                json.dump(dict(config), handle, indent=1)
        if cmdline_params is None:
            self.ship(folder)

        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [self.SCRIPT.name, self.CONFIG] if cmdline_params is None else list(cmdline_params)
        codeinfo.stdout_name = self.STDOUT
        codeinfo.stderr_name = self.STDERR

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = list(local_copy_list)
        calcinfo.remote_copy_list = list(remote_copy_list)
        calcinfo.retrieve_list = [*retrieve_list, self.STDOUT, self.STDERR]
        calcinfo.retrieve_temporary_list = list(retrieve_temporary_list)
        calcinfo.provenance_exclude_list = list(provenance_exclude_list)
        return calcinfo


class MaceScriptCalculation(ScriptCalculation):
    """A :class:`ScriptCalculation` whose driver runs a MACE model, as MACE's file or as its TorchScript form."""

    MODEL: ClassVar[str] = 'model.model'
    COMPILED_MODEL: ClassVar[str] = 'model.pt'

    @staticmethod
    def define_model(spec, *, required: bool, help: str) -> None:
        """Declare the ``model`` input, its TorchScript form ``compiled_model`` and the torch ``device``."""
        spec.input('model', valid_type=MaceModelData, required=required, help=help)
        spec.input(
            'compiled_model',
            valid_type=orm.SinglefileData,
            required=False,
            help='TorchScript archive of `model` (aiida_mofal.calculations.torchscript): the job then never imports '
            'mace-torch, which saves most of its start-up.',
        )
        spec.input('device', valid_type=orm.Str, default=lambda: orm.Str('cpu'), help='torch device: cpu or cuda.')

    @staticmethod
    def define_script_exit_codes(spec, *, script: str, result: str) -> None:
        """Declare the exit codes of a driver that left no result (300) or failed (301); ``script`` names it."""
        spec.exit_code(300, 'ERROR_NO_RESULT', message=f'the {script} script wrote no {result}: {{reason}}')
        spec.exit_code(301, 'ERROR_SCRIPT_FAILED', message=f'the {script} script failed: {{reason}}')

    def model_config(self, folder, local_copy_list: list) -> dict:
        """Put the model into ``folder``: MACE's file, or the TorchScript archive (added to ``local_copy_list``).

        Return what the driver's configuration says of the model: its file, format and dtype, the device, threads.
        """
        model, compiled = self.inputs.model, self.inputs.get('compiled_model')
        if compiled is not None:
            local_copy_list.append(file_copy(compiled, compiled.filename, self.COMPILED_MODEL))
        else:  # MACE's file, made from the checked weights (never a pickle from the database)
            write_model(folder, model, self.MODEL)
        return {
            'model_file': self.MODEL if compiled is None else self.COMPILED_MODEL,
            'model_format': 'mace' if compiled is None else 'torchscript',
            'dtype': model.base.attributes.get('dtype'),
            'device': self.inputs.device.value,
            'torch_threads': self.inputs.metadata.options.resources.get('num_cores_per_mpiproc'),
        }


class ScriptParser(Parser):
    """A parser of a :class:`ScriptCalculation`: tolerant file reads and the last line of standard error."""

    def read(self, name: str, mode: str = 'r'):
        """Return the content of retrieved file ``name``, or None when the job did not write it."""
        try:
            return self.retrieved.base.repository.get_object_content(name, mode=mode)
        except (FileNotFoundError, OSError):
            return None

    def stderr_tail(self) -> str:
        """Return the last non-blank line the script wrote to standard error (its error message)."""
        return last_line(self.read(self.node.process_class.STDERR))

    def driver_result(self, name: str) -> dict | ExitCode:
        """Return the JSON result ``name`` that the driver writes however it ends, or the exit code saying why not.

        ``ERROR_NO_RESULT`` when the file is missing (with the last line of standard error), ``ERROR_SCRIPT_FAILED``
        when the driver recorded an unexpected error (with the last line of its traceback): the CalcJob declares both.
        """
        text = self.read(name)
        if text is None:
            return self.exit_codes.ERROR_NO_RESULT.format(reason=self.stderr_tail())
        result = json.loads(text)
        if result['status'] == 'error':
            return self.exit_codes.ERROR_SCRIPT_FAILED.format(reason=last_line(result.get('message'), 'unknown error'))
        return result
