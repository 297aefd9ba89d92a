"""Helpers of the MD tests: run md_run.py as the remote runs it, with the committed tiny Cu model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from ase.io import write

from aiida_mofal.environment import lammps_environment
from aiida_mofal.md.protocol import max_temperature, validate_md_settings

DATA = Path(__file__).resolve().parent.parent / 'data_files' / 'md'
MODEL = DATA / 'cu_emt_tiny.model'
SCRIPT = Path(__file__).resolve().parents[2] / 'calculations' / 'scripts' / 'md_run.py'


def run_script(directory: Path, atoms, settings: dict, engine: str, restart: Path | None = None, **extra) -> dict:
    """Run md_run.py in ``directory`` (one torch thread: the test machine is shared) and load what it wrote."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = validate_md_settings(settings)
    write(directory / 'structure.extxyz', atoms, format='extxyz')
    config = {
        'engine': engine,
        'settings': settings,
        'model_file': str(MODEL),
        'dtype': 'float64',
        'device': 'cpu',
        'torch_threads': 1,
        'structure_file': 'structure.extxyz',
        'restart_file': str(restart) if restart else None,
        'walltime_seconds': None,
        'max_temperature': max_temperature(settings),
        **extra,
    }
    (directory / 'md_input.json').write_text(json.dumps(config))
    env = {**os.environ, **lammps_environment(), 'OMP_NUM_THREADS': '1'}
    process = subprocess.run(
        [sys.executable, '-W', 'ignore', str(SCRIPT), 'md_input.json'],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result = json.loads((directory / 'md_result.json').read_text())
    assert result['status'] != 'error', result['message'] + process.stderr[-3000:]
    output = {'result': result}
    for name in ('trajectory', 'thermo', 'restart'):
        path = directory / f'{name}.npz'
        if path.is_file():
            with np.load(path) as handle:
                output[name] = {key: handle[key] for key in handle.files}
    return output


def run_many(directories: list[Path]) -> None:
    """Run md_run.py on several prepared directories in one Python process (imports paid once)."""
    driver = (
        'import os, sys\n'
        f'sys.path.insert(0, {str(SCRIPT.parent)!r})\n'
        'import md_run\n'
        'for directory in sys.argv[1:]:\n'
        '    os.chdir(directory)\n'
        "    md_run.main(['md_input.json'])\n"
    )
    env = {**os.environ, **lammps_environment(), 'OMP_NUM_THREADS': '1'}
    subprocess.run(
        [sys.executable, '-W', 'ignore', '-c', driver, *map(str, directories)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def prepare(directory: Path, atoms, settings: dict, engine: str) -> Path:
    """Write the inputs of one md_run.py run into ``directory`` (see :func:`run_script`)."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = validate_md_settings(settings)
    write(directory / 'structure.extxyz', atoms, format='extxyz')
    config = {
        'engine': engine,
        'settings': settings,
        'model_file': str(MODEL),
        'dtype': 'float64',
        'device': 'cpu',
        'torch_threads': 1,
        'structure_file': 'structure.extxyz',
        'restart_file': None,
        'walltime_seconds': None,
        'max_temperature': max_temperature(settings),
    }
    (directory / 'md_input.json').write_text(json.dumps(config))
    return directory


def load_outputs(directory: Path) -> dict:
    """Load md_result.json and the npz files of a finished run."""
    output = {'result': json.loads((directory / 'md_result.json').read_text())}
    for name in ('trajectory', 'thermo', 'restart'):
        path = directory / f'{name}.npz'
        if path.is_file():
            with np.load(path) as handle:
                output[name] = {key: handle[key] for key in handle.files}
    return output
