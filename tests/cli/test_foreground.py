"""Issue 18, class 4: after Ctrl-C in the foreground, the engines a local job left running are ended.

The direct scheduler's kill reaches only a job's script, so ``mpirun`` and the engine keep running, re-parented to
init; :func:`end_local_engines` finds them by their working directory (the job's folder). The whole Ctrl-C path
(``run_foreground``) was measured on a real CP2K label (see docs/guide/security.md); a real engine run with a
signal does not fit the test budget.
"""

import subprocess
import sys

import psutil

from aiida_mofal.cli.foreground import end_local_engines


def test_engines_left_in_a_job_folder_are_ended(tmp_path):
    job, elsewhere = tmp_path / 'job', tmp_path / 'other'
    job.mkdir(), elsewhere.mkdir()
    sleeper = [sys.executable, '-c', 'import time; time.sleep(300)']
    orphan = subprocess.Popen(sleeper, cwd=job / '.', start_new_session=True)  # like a detached job script's child
    bystander = subprocess.Popen(sleeper, cwd=elsewhere, start_new_session=True)
    try:
        ended = end_local_engines([job], grace=5.0)
        assert ended == [orphan.pid]
        assert orphan.wait(timeout=10) is not None
        assert psutil.pid_exists(bystander.pid) and bystander.poll() is None  # nothing outside the folder
    finally:
        for process in (orphan, bystander):
            process.kill()
            process.wait()
