"""A cluster campaign whose labels, trainings and MD all run as SLURM jobs over SSH (``slurm-localhost``).

Only ``resources.*.code`` differs from a localhost campaign (plus ``resources.cp2k.pack``: the labels go three
to a SLURM job). The daemon is stopped while a SLURM job of cycle 1 is queued or running, SLURM runs it to its
end with no daemon, and the daemon is started again; the campaign must finish, and SLURM's own log must list
exactly the jobs the graph has: none submitted twice.

Sizes cut to the bone: two initial clusters (no periodic cell), one cycle, one 10-step walk, one new cluster,
three epochs per training. ``MOFAL_SLURM_CAPTURE=DIR`` writes the ``sinfo``/``squeue`` output seen during the run
and the final ``mofal status`` table there (for the notes and docs/guide/remote.md).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.remote.profile_commands import BIN
from tests.remote.profile_commands import run_in_profile as run

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.engine, pytest.mark.slurm, pytest.mark.daemon, pytest.mark.slow, pytest.mark.timeout(2400)]


# squeue's default NAME column is 8 characters wide: it shows aiida-137 as aiida-13, another job's name
SQUEUE_FORMAT = '%.6i %.9P %.12j %.6u %.2t %.8M %.4D %R'


def slurm(*command: str) -> str:
    return subprocess.run(list(command), capture_output=True, text=True, check=True).stdout


def held_jobs(queue: str) -> list[tuple[str, str]]:
    """Suspend the running and hold the pending ``aiida-`` jobs of ``squeue`` output; return what to undo."""
    held = []
    for job_id, state in re.findall(r'^\s*(\d+)\s+\S+\s+aiida-\d+\s+\S+\s+(\S+)', queue, re.MULTILINE):
        action = 'suspend' if state == 'R' else 'hold'
        if subprocess.run(['scontrol', action, job_id], capture_output=True).returncode == 0:  # may have ended
            held.append((job_id, 'resume' if action == 'suspend' else 'release'))
    return held


def release_jobs(held: list[tuple[str, str]]) -> None:
    for job_id, action in held:
        subprocess.run(['scontrol', action, job_id], capture_output=True)


def submitted_job_ids(since: int) -> list[str]:
    """SLURM job ids that slurmctld accepted (its log), from byte offset ``since``: the jobs really submitted."""
    log = ROOT / '.slurm' / 'log' / 'slurmctld.log'
    text = log.read_bytes()[since:].decode(errors='replace')
    return re.findall(r'_slurm_rpc_submit_batch_job: JobId=(\d+)', text)


def campaign_file(folder: Path) -> Path:
    config = yaml.safe_load((ROOT / 'examples' / 'campaign_znim2.yaml').read_text())
    config['name'] = 'znim2-on-slurm'
    config['targets'][0]['structure'] = str(ROOT / 'tests' / 'data_files' / 'structures' / 'ZnIm2-sod_Lewis2009.cif')
    config['initial'].update(periodic_frames=0, clusters=2, test_frames=0)
    config['train']['overrides'] = {'hyperparameters': {'max_num_epochs': 3, 'patience': 3, 'start_swa': 2}}
    config['explore'].update(walks=1, steps=10)
    config['extract'].update(max_clusters=1)
    config['stop'] = {'max_cycles': 1, 'unknown_fraction': None}
    config['resources'] = {
        'cp2k': {'code': 'cp2k@slurm-localhost', 'pack': 3, 'options': {'max_wallclock_seconds': 1800}},
        'train': {'code': 'python-mace@slurm-localhost', 'partition': 'cpu'},
        'md': {'code': 'python-mace@slurm-localhost'},
    }
    path = folder / 'campaign.yaml'
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope='module')
def slurm_campaign(slurm_codes, tmp_path_factory):
    """Run the campaign under the daemon; stop and restart the daemon while its first SLURM job is in squeue."""
    aiida_path = tmp_path_factory.mktemp('profile')
    run([BIN / 'mofal', 'setup', '--json'], aiida_path)
    run([BIN / 'mofal', 'computer', 'setup', ROOT / 'examples' / 'computers' / 'slurm-localhost.yaml'], aiida_path)
    log = ROOT / '.slurm' / 'log' / 'slurmctld.log'
    offset = log.stat().st_size if log.exists() else 0
    path = campaign_file(tmp_path_factory.mktemp('campaign'))
    submitted = json.loads(run([BIN / 'mofal', 'run', path, '--daemon', '--json'], aiida_path).stdout)
    pk, seen, status = submitted['pk'], {}, {}
    deadline = time.time() + 2000
    try:
        while time.time() < deadline:
            status = json.loads(run([BIN / 'mofal', 'status', pk, '--json'], aiida_path).stdout)
            queue = slurm('squeue', '-o', SQUEUE_FORMAT)
            if 'restart' not in seen and status['cycles'] and 'aiida-' in queue:  # a cycle-1 job is with SLURM
                seen['sinfo'] = slurm('sinfo')
                # hold the jobs while the daemon stops: short jobs ended during a slow stop, so none outlived it
                held = held_jobs(queue)
                try:  # a long circus timeout: with the default 5 s a stop can time out and leave workers submitting
                    run([BIN / 'verdi', 'daemon', 'stop', '--timeout', '120'], aiida_path)
                    seen['squeue'] = slurm('squeue', '-o', SQUEUE_FORMAT)
                finally:  # never leave a job held for the tests after this one
                    release_jobs(held)
                jobs = set(re.findall(r'aiida-\d+', seen['squeue']))
                if not jobs:  # the job ended while the daemon was stopping: no job outlived it; wait for the next
                    run([BIN / 'verdi', 'daemon', 'start', '1'], aiida_path)
                    continue
                for _ in range(600):  # with the daemon down, let SLURM run the jobs to their end (one may be pending)
                    if not jobs & set(re.findall(r'aiida-\d+', slurm('squeue', '-o', SQUEUE_FORMAT))):
                        break
                    time.sleep(1)
                seen['squeue_after'] = slurm('squeue', '-o', SQUEUE_FORMAT)
                run([BIN / 'verdi', 'daemon', 'start', '1'], aiida_path)
                seen['restart'] = time.time()
            if status['state'] in ('finished', 'excepted', 'killed'):
                break
            time.sleep(3)
    finally:
        run([BIN / 'verdi', 'daemon', 'stop'], aiida_path, check=False)
    table = run([BIN / 'mofal', 'status', pk], aiida_path).stdout
    capture = os.environ.get('MOFAL_SLURM_CAPTURE')
    if capture:
        folder = Path(capture)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ('sinfo', 'squeue', 'squeue_after'):
            (folder / f'{name}.txt').write_text(seen.get(name, ''))
        (folder / 'status.txt').write_text(table)
    return {'pk': pk, 'aiida_path': aiida_path, 'status': status, 'seen': seen, 'slurm_log_offset': offset}


JOBS = """
from aiida import load_profile, orm; load_profile(); import json, sys
campaign = orm.load_node(int(sys.argv[1]))
jobs = [n for n in campaign.called_descendants if isinstance(n, orm.CalcJobNode)]
print(json.dumps([
    {'label': n.process_label, 'computer': n.computer.label, 'job_id': n.get_job_id(), 'ok': n.is_finished_ok,
     'link': n.base.links.get_incoming().first().link_label, 'caller': n.caller.pk}
    for n in jobs
]))
"""


def test_campaign_runs_on_slurm_and_survives_a_daemon_restart_with_no_duplicated_job(slurm_campaign):
    status, seen = slurm_campaign['status'], slurm_campaign['seen']
    assert status['state'] == 'finished' and status['exit_status'] == 0, status
    assert 'restart' in seen, 'no SLURM job of the campaign was ever seen in squeue'
    assert 'aiida-' in seen['squeue']  # the job was with SLURM when the daemon went down
    assert 'aiida-' not in seen['squeue_after']  # and SLURM ran it to its end with no daemon: retrieved after
    rows = status['cycles']
    assert [row['cycle'] for row in rows] == [0, 1]
    assert rows[0]['training_configurations'] == 2 and rows[1]['clusters_labelled'] == 1
    assert rows[1]['training_configurations'] > rows[0]['training_configurations']
    jobs = json.loads(run([sys.executable, '-c', JOBS, slurm_campaign['pk']], slurm_campaign['aiida_path']).stdout)
    kinds = {job['label'] for job in jobs}
    assert {'Cp2kPackedCalculation', 'MaceTrainCalculation', 'MdCalculation'} <= kinds, kinds
    assert all(job['computer'] == 'slurm-localhost' and job['ok'] for job in jobs), jobs
    # the initial 2 clusters + free Zn, N, C, H: 6 labels in ceil(6/3) = 2 SLURM jobs; cycle 1: 1 cluster, 1 job
    assert sum(job['label'] == 'Cp2kPackedCalculation' for job in jobs) == 3
    # no duplicate: each (work chain, link) launched once, and SLURM accepted exactly the graph's jobs
    assert len({(job['caller'], job['link']) for job in jobs}) == len(jobs)
    accepted = submitted_job_ids(slurm_campaign['slurm_log_offset'])
    assert sorted(accepted, key=int) == sorted((job['job_id'] for job in jobs), key=int)
    # which SLURM job labelled the cluster learned in cycle 1: `mofal provenance` on the last training frame
    code = (
        'from aiida import load_profile, orm; load_profile(); import sys\n'
        'd = orm.load_node(int(sys.argv[1])).outputs.dataset; print(f"{d.pk}:{d.count - 1}")'
    )
    frame = run([sys.executable, '-c', code, slurm_campaign['pk']], slurm_campaign['aiida_path']).stdout.strip()
    traced = json.loads(run([BIN / 'mofal', 'provenance', frame, '--json'], slurm_campaign['aiida_path']).stdout)
    label = traced['label']
    assert label['cp2k_job']['process'] == 'Cp2kPackedCalculation' and label['computer'] == 'slurm-localhost'
    assert label['scheduler_job_id'] in accepted and label['labelling']['called_as'] == 'cycle_1_label'
    text = run([BIN / 'mofal', 'provenance', frame], slurm_campaign['aiida_path']).stdout
    assert f'scheduler job {label["scheduler_job_id"]}' in text and 'packed: 1 structure(s) in that one job' in text
