"""A label on the project's SLURM (``slurm-localhost``) under the daemon: a walltime kill, a daemon stop/start
and an ``scancel``, all in one work chain, and no job submitted twice.

The first CP2K job sleeps past its 60 s SLURM time limit; the daemon is stopped while it runs and started again
only after SLURM has killed it, so the restarted daemon must find the job gone, retrieve it and hand the
``ERROR_SCHEDULER_OUT_OF_WALLTIME`` (120) to the walltime handler. The restart sleeps too and is cancelled with
``scancel`` while it runs (no output: 210, retried once). The third job runs CP2K and labels the water molecule.
slurmctld's own log must list exactly the three job ids the graph holds (so the test expects to be the only one
submitting to that SLURM while it runs, as ``tests/engines/test_slurm_campaign.py`` does).

Measured: 262 s in all (241 s in the test itself, of which the 60 s limit plus slurmctld's 30 s check interval
are ~90 s) under a load average of ~20 on the 2-core project machine.
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.remote.profile_commands import BIN, run_in_profile

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.engine, pytest.mark.slurm, pytest.mark.daemon, pytest.mark.slow, pytest.mark.timeout(900)]

SUBMIT = r"""
import json, sys
from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import molecule
load_profile()
from aiida_mofal.workchains.label import LabelWorkChain
water = molecule('H2O')
water.info.update(config_type='cluster', charge=0, multiplicity=1)
options = {'prepend_text': sys.argv[1], 'max_wallclock_seconds': 60}
builder = LabelWorkChain.get_builder_from_protocol(
    orm.load_code('cp2k@slurm-localhost'), [water], protocol='xtb', overrides={'isolated_atoms': False},
    options=options,
)
print(submit(builder).pk)
"""

STATE = r"""
import json, sys
from aiida import load_profile, orm
load_profile()
node = orm.load_node(int(sys.argv[1]))
calcs = sorted((n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime)
def stderr(calc):
    try:
        return calc.outputs.retrieved.base.repository.get_object_content('_scheduler-stderr.txt')
    except Exception:
        return ''
def script(calc):  # a job still being uploaded has no submit script yet (polled while the work chain runs)
    try:
        return calc.base.repository.get_object_content('_aiidasubmit.sh')
    except FileNotFoundError:
        return ''
print(json.dumps({
    'terminated': node.is_terminated, 'ok': node.is_finished_ok, 'exit_message': node.exit_message,
    'count': node.outputs.dataset.count if 'dataset' in node.outputs else None,
    'calcs': [{'pk': c.pk, 'job_id': c.get_job_id(), 'exit_status': c.exit_status, 'stderr': stderr(c),
               'restart': 'parent_calc_folder' in c.inputs, 'computer': c.computer.label,
               'script': script(c)} for c in calcs],
}))
"""


def run(command, aiida_path, timeout=300, check=True):
    return run_in_profile(command, aiida_path, timeout=timeout, check=check)


def daemon(aiida_path, *command: str, check: bool = True):
    """``verdi daemon ...`` with a long circus timeout: on a loaded machine the default 5 s one times out."""
    return run([BIN / 'verdi', 'daemon', *command, '--timeout', '120'], aiida_path, check=check)


def running_job(marker: Path, after: set[str]) -> str | None:
    """The id of a RUNNING job of this test (``marker`` in its script) not in ``after`` that has really started."""
    out = subprocess.run(['squeue', '-h', '-o', '%i %j %T %Z'], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        job_id, name, state, workdir = line.split()
        script, stdout = Path(workdir) / '_aiidasubmit.sh', Path(workdir) / '_scheduler-stdout.txt'
        ours = script.is_file() and str(marker) in script.read_text(errors='replace')
        started = stdout.is_file() and 'SLURM job' in stdout.read_text(errors='replace')
        if ours and state == 'RUNNING' and job_id not in after and started:
            return job_id
    return None


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f'timed out after {timeout:.0f} s waiting for {what}')


def in_queue(job_id: str) -> bool:
    return job_id in subprocess.run(['squeue', '-h', '-o', '%i'], capture_output=True, text=True).stdout.split()


def test_walltime_kill_with_the_daemon_down_then_scancel_each_handled_once(slurm_codes, tmp_path):
    start = time.time()
    aiida_path = tmp_path / 'profile'
    run([BIN / 'mofal', 'setup', '--json'], aiida_path)
    run([BIN / 'mofal', 'computer', 'setup', ROOT / 'examples' / 'computers' / 'slurm-localhost.yaml'], aiida_path)
    log = ROOT / '.slurm' / 'log' / 'slurmctld.log'
    offset = log.stat().st_size if log.exists() else 0
    first, second = tmp_path / 'first-job-ran', tmp_path / 'second-job-ran'  # the "remote" shares this disk
    prepend = f'if [ ! -e {first} ]; then touch {first}; sleep 600; '
    prepend += f'elif [ ! -e {second} ]; then touch {second}; sleep 600; fi'
    daemon(aiida_path, 'start', '1')
    seen = {}
    try:
        pk = run([sys.executable, '-c', SUBMIT, prepend], aiida_path).stdout.strip().splitlines()[-1]
        killed = wait_for(lambda: running_job(first, set()), 240, 'the first SLURM job to run')
        daemon(aiida_path, 'stop')
        queue = ['squeue', '-o', '%.6i %.9P %.12j %.6u %.2t %.8M %.4D %R']  # the default NAME column cuts aiida-137
        seen['squeue_daemon_down'] = subprocess.run(queue, capture_output=True, text=True).stdout
        wait_for(lambda: not in_queue(killed), 150, 'SLURM to stop the first job at its 60 s limit')
        daemon(aiida_path, 'start', '1')
        cancelled = wait_for(lambda: running_job(first, {killed}), 240, 'the walltime restart to run')
        subprocess.run(['scancel', cancelled], check=True)
        state = wait_for(
            lambda: (s := json.loads(run([sys.executable, '-c', STATE, pk], aiida_path).stdout))['terminated'] and s,
            300,
            'the label work chain to end',
        )
    finally:
        daemon(aiida_path, 'stop', check=False)
    elapsed = time.time() - start
    print(f'SLURM daemon test: {elapsed:.0f} s; squeue with the daemon down:\n{seen["squeue_daemon_down"]}')
    assert state['ok'], state['exit_message']
    calcs = state['calcs']
    assert [c['exit_status'] for c in calcs] == [120, 210, 0], calcs  # time limit, scancel, labelled
    assert [c['job_id'] for c in calcs[:2]] == [killed, cancelled]
    assert 'DUE TO TIME LIMIT' in calcs[0]['stderr'] and 'CANCELLED AT' in calcs[1]['stderr']
    assert calcs[1]['restart']  # the walltime handler restarted from the stopped job's folder
    assert '#SBATCH --time=00:01:00' in calcs[0]['script']  # the 60 s walltime reached SLURM as its time limit
    assert all(c['computer'] == 'slurm-localhost' for c in calcs)
    assert f'aiida-{calcs[0]["pk"]}' in seen['squeue_daemon_down']  # it was with SLURM while the daemon was down
    accepted = re.findall(
        r'_slurm_rpc_submit_batch_job: JobId=(\d+)', log.read_bytes()[offset:].decode(errors='replace')
    )
    assert accepted == [c['job_id'] for c in calcs]  # three sbatch calls in all: none repeated by the restart
    assert state['count'] == 1
