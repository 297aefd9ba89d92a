"""A real temperature campaign, end to end, under the daemon: stopped after step 0 and resumed.

Real CP2K (GFN1-xTB, periodic, with stress), real MACE training (tiny), real ASE NPT MD on the 102-atom Zn(Im)2
framework; cut to the bone: two steps (step 0: 2 perturbations; step 1: one 20-step NPT run at 100 K, one walk),
no test set (errors on the training set), trainings of 2 epochs, no final random step. The stages: 3 cell labels
and 4 free atoms, 2 trainings, 1 MD job, 2 evaluations in the campaign's process. 491 s (fixture 470 s) on the
shared 2-core machine at load 10-13, next to the example campaign (2026-12-02); 1240 s at load ~20. The steps, the
final ramp and its failures are tested one by one against fake children in ``tests/workchains/test_temperature.py``
and ``tests/workchains/test_temperature_final.py``.
"""

import json
import sys
import time

import pytest
import yaml

from tests.engines.test_campaign import MOFAL, ROOT, VERDI, run

pytestmark = [pytest.mark.engine, pytest.mark.daemon, pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope='module')
def finished_temperature_campaign(tmp_path_factory):
    """Submit to the daemon; once step 0 is recorded stop the daemon, start it again, let the campaign finish."""
    folder = tmp_path_factory.mktemp('temperature')
    config = yaml.safe_load((ROOT / 'examples' / 'campaign_temperature.yaml').read_text())
    config['targets'][0]['structure'] = str(ROOT / 'tests' / 'data_files' / 'structures' / 'ZnIm2-sod_Lewis2009.cif')
    config['initial']['candidates'] = 2
    config['explore'].update(runs=1, steps=20, temperatures={'start': 100.0, 'step': 100.0, 'stop': 100.0})
    config['test'].update(frames=0)  # errors on the training set: no test ramp, no test labels
    config['final'] = {'random': 0}  # the final random step is tested against fake children (tests/workchains)
    config['train']['overrides'] = {'hyperparameters': {'max_num_epochs': 2, 'patience': 2, 'swa': False}}
    assert 'overrides' not in config['label']  # the xtb protocol's EPS_SCF (1e-6) as it is
    path = folder / 'campaign.yaml'
    path.write_text(yaml.safe_dump(config))
    aiida_path = tmp_path_factory.mktemp('profile')
    run([MOFAL, 'setup', '--json'], aiida_path)
    submitted = json.loads(run([MOFAL, 'run', str(path), '--daemon', '--json'], aiida_path).stdout)
    pk = submitted['pk']
    assert submitted['process'] == 'TemperatureCampaignWorkChain'
    restarted, deadline = False, time.time() + 3000
    try:
        while time.time() < deadline:
            status = json.loads(run([MOFAL, 'status', str(pk), '--json'], aiida_path).stdout)
            if not restarted and status['cycles']:  # model 0 is evaluated: stop the daemon mid-campaign
                run([VERDI, 'daemon', 'stop'], aiida_path, check=False)
                run([VERDI, 'daemon', 'start', '1'], aiida_path)
                restarted = True
            if status['state'] in ('finished', 'excepted', 'killed'):
                break
            time.sleep(10)  # each poll is a Python start (seconds of CPU): do not starve the campaign
    finally:
        run([VERDI, 'daemon', 'stop'], aiida_path, check=False)
    assert restarted, 'the campaign ended before the daemon could be restarted'
    return {'pk': pk, 'aiida_path': aiida_path, 'status': status}


def test_temperature_campaign_runs_a_step_and_resumes_after_a_daemon_restart(finished_temperature_campaign):
    status = finished_temperature_campaign['status']
    assert status['state'] == 'finished' and status['exit_status'] == 0, status
    # aiida-core keeps no exit message for exit status 0: the reason is the node's stop_reason extra
    reasons = ('reached T_max = 100 K after 1 temperature step(s)',
               'step 1 at 100 K accepted no configuration (CBAD found nothing new)')  # fmt: skip
    assert status['exit_message'] is None and status['stop_reason'] in reasons, status
    campaign = finished_temperature_campaign
    report = run([VERDI, 'process', 'report', str(campaign['pk'])], campaign['aiida_path']).stdout
    assert f'campaign done: {status["stop_reason"]}' in report, report[-2000:]
    first, second = status['cycles']
    assert (first['step'], first['temperature_k'], second['step'], second['temperature_k']) == (0, None, 1, 100.0)
    assert first['frames_seen'] == 2 and first['accepted'] == first['training_configurations'] == 2
    assert second['runs'] == second['runs_with_frames'] == 1 and second['frames_seen'] == 2  # frames at 0, 20 steps
    assert second['accepted'] <= 1 and second['training_configurations'] == 2 + second.get('labelled', 0)
    for row in (first, second):
        assert row['evaluated_on'] == 'training' and row['stress_rmse_gpa'] > 0 and row['energy_rmse_ev_per_atom'] > 0
        assert row['force_rmse_ev_per_a'] > 0 and row['occupied_per_family']['bond'] > 0
    code = (
        'from aiida import load_profile, orm; load_profile(); import collections, sys\n'
        'campaign = orm.load_node(int(sys.argv[1]))\n'
        'sources = {type(orm.load_node(a.info["source_trajectory"])).__name__ '
        'for a in campaign.outputs.dataset.get_atoms()}\n'
        'pairs = []\n'
        'for kind in (orm.CalcJobNode, orm.WorkflowNode):\n'
        '    pairs += orm.QueryBuilder().append(orm.WorkflowNode, project=["id"], tag="p")'
        '.append(kind, with_incoming="p", edge_project=["label"]).all()\n'
        'print(max(collections.Counter((p, l) for p, l in pairs).values()), " ".join(sorted(sources)))'
    )
    pk, aiida_path = finished_temperature_campaign['pk'], finished_temperature_campaign['aiida_path']
    most, *sources = run([sys.executable, '-c', code, str(pk)], aiida_path).stdout.split()
    assert most == '1'  # resumed without launching any job or work chain twice
    assert sources == ['MdTrajectoryData']  # perturbations and MD frames: read from stored trajectories
