"""A real campaign, end to end, under the daemon of the ZeroMQ profile: killed mid-way and resumed, then
exported and imported into a fresh profile, where `mofal report` gives the same numbers.

Real CP2K (GFN1-xTB), real MACE training (tiny), real ASE MD, and the MACE inference (features for the density
fit, evaluation, scan) as `mofal.mace.evaluate` jobs on `python-mace@localhost` (`resources.scan`): the route of
large systems. The small-system route (calcfunctions) is tested step by step in `tests/workchains` and
`tests/calculations`. Sizes cut to the bone: one cycle after model 0, one walk, two clusters.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MOFAL = str(Path(sys.executable).parent / 'mofal')
VERDI = str(Path(sys.executable).parent / 'verdi')

# about 10 min on the idle 2-core machine; the limits leave room for a loaded one
pytestmark = [pytest.mark.engine, pytest.mark.daemon, pytest.mark.slow, pytest.mark.timeout(3600)]


def run(command, aiida_path, timeout=1200, check=True):
    path = f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}'  # the daemon needs `verdi`
    env = {**os.environ, 'AIIDA_PATH': str(aiida_path), 'PATH': path}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert result.returncode == 0, f'{command}\nstdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}'
    return result


@pytest.fixture(scope='module')
def tiny_campaign(tmp_path_factory):
    folder = tmp_path_factory.mktemp('campaign')
    config = yaml.safe_load((ROOT / 'examples' / 'campaign_znim2.yaml').read_text())
    config['targets'][0]['structure'] = str(ROOT / 'tests' / 'data_files' / 'structures' / 'ZnIm2-sod_Lewis2009.cif')
    config['initial'].update(periodic_frames=1, clusters=3, test_frames=0)
    config['explore'].update(walks=1, steps=40)
    config['extract'].update(max_clusters=2)
    config['stop'] = {'max_cycles': 1, 'unknown_fraction': None}  # mae_p95 from the protocol
    config['resources']['scan'] = {'code': 'python-mace@localhost'}
    config['resources']['cp2k'].pop('pack', None)  # one job per label here; packed labels: test_slurm_campaign.py
    path = folder / 'campaign.yaml'
    path.write_text(yaml.safe_dump(config))
    return path


def _calcjob_count(aiida_path):
    code = (
        'from aiida import load_profile, orm; load_profile(); print(orm.QueryBuilder().append(orm.CalcJobNode).count())'
    )
    return int(run([sys.executable, '-c', code], aiida_path).stdout.strip())


@pytest.fixture(scope='module')
def finished_campaign(tiny_campaign, tmp_path_factory):
    """Submit to the daemon, kill the daemon once the first training is under way, restart it, let it finish."""
    aiida_path = tmp_path_factory.mktemp('profile')
    run([MOFAL, 'setup', '--json'], aiida_path)
    submitted = json.loads(run([MOFAL, 'run', str(tiny_campaign), '--daemon', '--json'], aiida_path).stdout)
    pk = submitted['pk']  # the daemon was started by `mofal run --daemon`
    assert submitted['submitted'] is True and submitted['process'] == 'ClusterCampaignWorkChain'
    deadline = time.time() + 3000
    killed_at = None
    try:
        while time.time() < deadline:
            status = json.loads(run([MOFAL, 'status', str(pk), '--json'], aiida_path).stdout)
            if killed_at is None and status['cycles']:  # model 0 exists: kill the daemon mid-campaign
                killed_at = _calcjob_count(aiida_path)
                run([VERDI, 'daemon', 'stop'], aiida_path, check=False)
                run([VERDI, 'daemon', 'start', '1'], aiida_path)
            if status['state'] in ('finished', 'excepted', 'killed'):
                break
            time.sleep(5)
    finally:
        run([VERDI, 'daemon', 'stop'], aiida_path, check=False)
    assert killed_at is not None, 'the campaign ended before the daemon could be killed'
    return {'pk': pk, 'aiida_path': aiida_path, 'status': status, 'calcjobs_before_kill': killed_at}


def test_campaign_runs_a_cycle_with_inference_jobs_and_resumes_after_a_daemon_restart(finished_campaign):
    status = finished_campaign['status']
    assert status['state'] == 'finished' and status['exit_status'] == 0, status
    assert status['test_set'] == 'test set: none; the errors are on the training set'  # test_frames: 0 here
    rows = status['cycles']
    assert [row['cycle'] for row in rows] == [0, 1]
    assert rows[0]['training_configurations'] == 4  # 1 periodic frame + 3 clusters
    for row in rows[1:]:
        assert row['frames_scanned'] > 0 and 0.0 <= row['unknown_fraction'] <= 1.0
        assert row['training_configurations'] >= rows[0]['training_configurations']
        assert row['force_mae_pk_ev_per_a'] > 0
    assert rows[-1]['training_configurations'] > rows[0]['training_configurations']  # clusters were learned
    assert rows[1]['clusters_labelled'] == rows[1]['clusters_extracted'] > 0 and rows[1]['failures'] == 0
    assert [(w['target'], w['walk'], w['finished_ok']) for w in rows[1]['walks']] == [('znim2', 0, True)]
    assert set(rows[0]['processes']) == {'label', 'train', 'features', 'density_fit', 'evaluation'}
    assert {'scan', 'scan_clusters', 'label', 'train'} <= set(rows[1]['processes'])
    kinds = (
        'from aiida import load_profile, orm; load_profile(); import sys\n'
        'print(" ".join(orm.load_node(u).process_label for u in sys.argv[1:]))'
    )
    jobs = [rows[1]['processes'][role] for role in ('scan', 'features', 'evaluation')]
    labels = run([sys.executable, '-c', kinds, *jobs], finished_campaign['aiida_path']).stdout.split()
    assert labels == ['MaceEvaluateCalculation'] * 3  # the inference ran as jobs, not in the daemon worker
    # resumed without repeating finished jobs: no work chain launched the same job (link label) twice
    code = (
        'from aiida import load_profile, orm; load_profile(); import collections\n'
        'pairs = []\n'
        'for kind in (orm.CalcJobNode, orm.WorkflowNode):\n'
        '    pairs += orm.QueryBuilder().append(orm.WorkflowNode, project=["id"], tag="p")'
        '.append(kind, with_incoming="p", edge_project=["label"]).all()\n'
        'print(max(collections.Counter((p, l) for p, l in pairs).values()), len(pairs))'
    )
    most, jobs = run([sys.executable, '-c', code], finished_campaign['aiida_path']).stdout.split()
    assert most == '1' and int(jobs) > 20
    assert finished_campaign['calcjobs_before_kill'] > 0


def test_archive_round_trip_gives_the_same_report(finished_campaign, tmp_path):
    pk, source = finished_campaign['pk'], finished_campaign['aiida_path']
    report_here = json.loads(run([MOFAL, 'report', str(pk), '-o', str(tmp_path / 'here'), '--json'], source).stdout)
    assert Path(report_here['figures']['learning_curve']).stat().st_size > 1000
    archive = tmp_path / 'campaign.aiida'
    run([VERDI, 'archive', 'create', '--all', str(archive)], source)
    fresh = tmp_path / 'fresh'
    fresh.mkdir()
    run([VERDI, 'presto', '--profile-name', 'fresh'], fresh)
    run([VERDI, 'archive', 'import', str(archive)], fresh)
    uuid_code = f'from aiida import load_profile, orm; load_profile(); print(orm.load_node({pk}).uuid)'
    uuid = run([sys.executable, '-c', uuid_code], source).stdout.strip()
    report_there = json.loads(run([MOFAL, 'report', uuid, '-o', str(tmp_path / 'there'), '--json'], fresh).stdout)
    assert report_there['cycles'] == report_here['cycles']
    assert set(report_there['figures']) == set(report_here['figures'])


def test_provenance_traces_a_learned_cluster_and_the_last_model_on_the_real_graph(finished_campaign):
    """`mofal provenance` on the campaign's own graph: a cluster back to its CP2K job, MD frame, walk and model."""
    pk, aiida_path = finished_campaign['pk'], finished_campaign['aiida_path']
    code = (
        'from aiida import load_profile, orm; load_profile(); import sys, json\n'
        'c = orm.load_node(int(sys.argv[1]))\n'
        'print(json.dumps([c.outputs.dataset.pk, c.outputs.dataset.count, c.outputs.model.pk]))'
    )
    dataset, count, model = json.loads(run([sys.executable, '-c', code, str(pk)], aiida_path).stdout)
    last = json.loads(run([MOFAL, 'provenance', f'{dataset}:{count - 1}', '--json'], aiida_path).stdout)
    flagged, label = last['flagged'], last['label']
    assert last['config_type'] == 'cluster' and last['campaign']['pk'] == pk
    assert label['cp2k_job']['process'] == 'Cp2kCalculation' and label['cp2k_job']['exit_status'] == 0
    assert label['computer'] == 'localhost' and label['labelling']['called_as'] == 'cycle_1_label'
    assert flagged['cycle'] == 1 and flagged['target'] == 'znim2' and flagged['walk'] == 0
    assert flagged['md_job']['process'] == 'MdCalculation' and flagged['md_workchain']['called_as'].startswith(
        'cycle_1_explore'
    )
    assert flagged['scored_by']['process'] == 'MaceEvaluateCalculation'  # the scan ran as a job (resources.scan)
    assert flagged['uncertainty'] > flagged['threshold_uncertainty']  # the seed atom was unknown
    first = json.loads(run([MOFAL, 'provenance', f'{dataset}:0', '--json'], aiida_path).stdout)
    assert first['initial']['target'] == 'znim2' and first['steps'][-1]['step'] == 'initial_dataset'
    lineage = json.loads(run([MOFAL, 'provenance', str(model), '--json'], aiida_path).stdout)
    assert [entry['cycle'] for entry in lineage['models']] == [1, 0]
    assert lineage['models'][0]['parent_model'] == lineage['models'][1]['model']
    assert lineage['models'][0]['force_mae_p95_ev_per_a'] > 0
    assert lineage['dataset_history'][0]['made_by']['process'] == 'initial_dataset'
    assert lineage['dataset_history'][-1]['labelling']['called_as'] == 'cycle_1_label'


def test_the_docs_query_recipes_run_on_the_real_graph(finished_campaign):
    """Every QueryBuilder recipe of docs/guide/provenance.md, pasted as written, answers on the campaign's graph."""
    pk, aiida_path = finished_campaign['pk'], finished_campaign['aiida_path']
    script = str(ROOT / 'tests' / 'engines' / 'provenance_recipes.py')
    found = json.loads(run([sys.executable, script, str(pk), '1'], aiida_path).stdout)
    rows = finished_campaign['status']['cycles']
    clusters = found['clusters-of-a-cycle']['clusters']
    assert len(clusters) == rows[1]['clusters_labelled']
    assert all(isinstance(c['uncertainty'], float) and c['target'] == 'znim2' for c in clusters)
    models = found['models-and-errors']['models']
    assert [m['cycle'] for m in models] == [0, 1]
    assert [m['mae_p95'] for m in models] == [row['force_mae_pk_ev_per_a'] for row in rows]
    assert found['failed-labels'] == {'failed': [], 'failed_jobs': []}  # rows[1]['failures'] == 0 as well
