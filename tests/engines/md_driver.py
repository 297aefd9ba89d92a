"""Run the MD driver as a job's working directory runs it: shipped copies, one process for all walks of a job.

Used by the engine tests and by ``tests/parsers/fixtures/{md,reaxff}/make_fixtures.py``. The job directory is what
``MdCalculation`` would upload: ``md_input.json`` and ``walk_<k>/`` written by :func:`aiida_mofal.md.job.write_job`,
the driver and the pure modules copied by :func:`aiida_mofal.calculations.md.ship_driver`, and the driver runs with
``aiida_mofal`` unimportable, so every engine test also shows that the remote needs no aiida-mofal.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from aiida_mofal.calculations.md import ship_driver
from aiida_mofal.environment.engines import lammps_environment
from aiida_mofal.md import job
from aiida_mofal.md.protocol import validate_md_settings
from aiida_mofal.md.reaxff import CONTROL_FILENAME, FORCE_FIELD_FILENAME, validate_reaxff_parameters

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / 'tests' / 'data_files' / 'md' / 'cu_emt_tiny.model'
FORCEFIELDS = ROOT / 'tests' / 'data_files' / 'forcefields'

# the remote has no aiida-mofal: the driver must import only its shipped copies
_ISOLATED = "import runpy, sys; sys.modules['aiida_mofal'] = None; sys.argv = ['md_run.py', 'md_input.json']; "
_ISOLATED += "runpy.run_path('md_run.py', run_name='__main__')"


def mace_job(directory: Path, engine: str, walks: list, model: Path = MODEL, torchscript: Path | None = None, **extra):
    """Write a MACE job (``walks``: ``(atoms, settings)`` or ``(atoms, settings, restart_npz)``); return its directory.

    With ``torchscript`` (an archive of the model) the job runs the TorchScript model, as ``MdBaseWorkChain`` jobs do.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = {'model_file': str(model), 'dtype': 'float64', 'device': 'cpu', 'torch_threads': 1, 'model_format': 'mace'}
    if torchscript is not None:
        config.update(model_file=str(torchscript), model_format='torchscript')
    _write(directory, engine, walks, {**config, **extra})
    return directory


def reaxff_job(directory: Path, walks: list, parameters: dict | None = None, control: bool = True, **extra) -> Path:
    """Write a ReaxFF job with the ZIF force field of tests/data_files/forcefields; return its directory."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FORCEFIELDS / 'ffield_ZnN_2016.reax', directory / FORCE_FIELD_FILENAME)
    if control:
        shutil.copyfile(FORCEFIELDS / 'lmp_control.reax', directory / CONTROL_FILENAME)
    reaxff = {**validate_reaxff_parameters(parameters), 'control_file': CONTROL_FILENAME if control else None}
    _write(directory, 'lammps-reaxff', walks, {'reaxff': reaxff, **extra})
    return directory


def _write(directory: Path, engine: str, walks: list, config: dict) -> None:
    specs = []
    for index, (atoms, settings, *restart) in enumerate(walks):
        settings = None if settings is None else validate_md_settings(settings)
        specs.append({'index': index, 'atoms': atoms, 'settings': settings, 'restart': bool(restart)})
        if restart:
            (directory / job.walk_directory(index)).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(restart[0], directory / job.walk_directory(index) / job.RESTART)
    job.write_job(directory, engine, specs, **config)
    ship_driver(directory)


def run_job(directory: Path, timeout: int = 900) -> dict:
    """Run the driver in ``directory`` (one torch thread: the machine is shared); return ``md_result.json``."""
    env = {**os.environ, **lammps_environment(), 'OMP_NUM_THREADS': '1'}
    process = subprocess.run([sys.executable, '-W', 'ignore', '-c', _ISOLATED], cwd=directory, env=env,
                             capture_output=True, text=True, timeout=timeout)  # fmt: skip
    result = json.loads((directory / 'md_result.json').read_text())
    assert result['status'] != 'error', result['message'] + process.stderr[-3000:]
    return result


def walk_files(directory: Path, position: int) -> dict:
    """Return the arrays a walk wrote: ``trajectory``, ``thermo``, ``restart`` (those that exist)."""
    output = {}
    for name in ('trajectory', 'thermo', 'restart'):
        path = directory / job.walk_directory(position) / f'{name}.npz'
        if path.is_file():
            with np.load(path) as handle:
                output[name] = {key: handle[key] for key in handle.files}
    return output
