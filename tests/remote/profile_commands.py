"""Run a command against another AiiDA profile (its own ``AIIDA_PATH``), as the daemon tests of SLURM do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run_in_profile(command, aiida_path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``command`` with ``AIIDA_PATH=aiida_path`` and this venv first on PATH; with ``check``, exit 0 or fail."""
    env = {**os.environ, 'AIIDA_PATH': str(aiida_path), 'PATH': f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}'}
    env['VIRTUAL_ENV'] = sys.prefix  # {local:VIRTUAL_ENV} of examples/computers/slurm-localhost.yaml
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert result.returncode == 0, f'{command}\nstdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}'
    return result
