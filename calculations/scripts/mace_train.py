"""Run MACE's own training (``mace_run_train``) with a deadline and record how it ended.

Usage on the remote machine (stand-alone: needs mace-torch, never AiiDA)::

    python mace_train.py mace_args.json

``mace_args.json`` holds ``{"argv": [...mace_run_train arguments...], "deadline_seconds": float | null,
"status_file": "mofal_status.json"}``. Arguments travel in a file, not on the command line, so that no shell
quoting can change them (the E0s are a Python dict literal).

Why a wrapper and not ``mace_run_train`` directly: the job must stop *before* the scheduler kills it, so
that the log, the results and the checkpoints are complete and the next job can continue from the latest
checkpoint. At the deadline (a fraction of the wall time) MACE gets SIGTERM, then SIGKILL 60 s later; a
SIGTERM that the scheduler sends to this wrapper is passed on the same way. The status file says which
happened, and whether cuequivariance (needed for an ML-IAP export for LAMMPS on GPU) is importable here.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time


def _cuequivariance_available() -> bool:
    """Say whether cuequivariance is installed, without importing it (that would import torch once more here)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ('cuequivariance', 'cuequivariance_torch'))
    except (ImportError, ValueError):
        return False


def main(config_path: str) -> int:
    """Run the training described in ``config_path``; always write the status file."""
    with open(config_path) as handle:
        config = json.load(handle)
    deadline = config.get('deadline_seconds')
    status = {'returncode': None, 'timed_out': False, 'terminated_by_signal': None}
    os.makedirs('checkpoints', exist_ok=True)  # always there, so that a restart can copy it even if empty
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, '-m', 'mace.cli.run_train', *config['argv']])

    def forward(signum, _frame):
        status['terminated_by_signal'] = signum
        process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    try:
        returncode = process.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        status['timed_out'] = True
        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
    status['returncode'] = returncode
    status['elapsed_seconds'] = time.monotonic() - start
    status['deadline_seconds'] = deadline
    status['cuequivariance_available'] = _cuequivariance_available()
    with open(config.get('status_file', 'mofal_status.json'), 'w') as handle:
        json.dump(status, handle, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
