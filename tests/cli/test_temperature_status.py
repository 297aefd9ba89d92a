"""`mofal status` and `mofal report` of a temperature campaign read its step records (stored stand-ins here)."""

import json
from pathlib import Path

import pytest
from aiida import orm
from aiida.common.links import LinkType
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root


def step(index, temperature, accepted, configs, force):
    return {
        'step': index, 'temperature_k': temperature, 'runs': 0 if index == 0 else 2, 'frames_seen': 4 + 6 * index,
        'accepted': accepted, 'failures': 0, 'training_configurations': configs, 'evaluated_on': 'test',
        'energy_rmse_ev_per_atom': 0.002 / (index + 1), 'force_rmse_ev_per_a': force, 'stress_rmse_gpa': 0.05,
        'force_mae_pk_ev_per_a': 2 * force, 'percentile_k': 95, 'wall_seconds': 60.0, 'evaluation': None,
        'occupied_per_family': {'cell_length': 3, 'cell_angle': 3, 'bond': 20 + index, 'angle': 30, 'dihedral': 40},
    }  # fmt: skip


@pytest.fixture
def temperature_campaign(aiida_profile):
    structure = orm.StructureData(cell=[[5, 0, 0], [0, 5, 0], [0, 0, 5]])
    structure.append_atom(position=(0, 0, 0), symbols='Zn')
    campaign = orm.WorkflowNode()
    campaign.set_process_label('TemperatureCampaignWorkChain')
    campaign.base.links.add_incoming(structure.store(), LinkType.INPUT_WORK, 'structure')
    campaign.label = 'znim2-temperature'
    campaign.store()
    final = {**step(2, None, 2, 7, 0.25), 'final': True, 'occupied_per_family': None}  # the random additions
    for record in (step(1, 100.0, 2, 5, 0.3), final, step(0, None, 3, 3, 0.5)):  # out of order: rows follow 'step'
        orm.Dict(record).store().base.links.add_incoming(campaign, LinkType.RETURN, f'steps__step_{record["step"]}')
    return campaign


def test_status_shows_one_row_per_temperature_step(temperature_campaign):
    result = CliRunner().invoke(cmd_root, ['status', str(temperature_campaign.pk)])
    assert result.exit_code == 0, result.output
    header, first, second, third = result.output.splitlines()[1:5]
    assert header.split()[:6] == ['step', 'T', 'K', 'runs', 'frames', 'accepted']
    assert 'S RMSE GPa' in header and 'E RMSE meV/at' in header and 'MAE_p95 meV/Å' in header
    assert first.split()[:7] == ['0', '-', '0', '4', '3', '0', '3']
    assert second.split()[:7] == ['1', '100', '2', '10', '2', '0', '5']
    assert second.split()[7:11] == ['1.00', '300.0', '0.050', '600.0']
    assert third.split()[:7] == ['2', 'random', '2', '16', '2', '0', '7']  # the paper's final random configurations
    result = CliRunner().invoke(cmd_root, ['status', str(temperature_campaign.pk), '--json'])
    data = json.loads(result.stdout)
    assert data['kind'] == 'temperature' and [row['step'] for row in data['cycles']] == [0, 1, 2]


def test_report_plots_the_learning_curve_against_t_and_the_occupancy(temperature_campaign, tmp_path):
    result = CliRunner().invoke(cmd_root, ['report', str(temperature_campaign.pk), '-o', str(tmp_path), '--json'])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data['figures']) == {'learning_curve', 'occupancy'}
    assert all(Path(path).stat().st_size > 1000 for path in data['figures'].values())
    summary = Path(data['summary']).read_text()
    assert summary.startswith(f'# Temperature campaign {temperature_campaign.pk}: znim2-temperature')
    assert '![occupancy](occupancy.png)' in summary


def test_status_says_why_a_campaign_that_ended_with_exit_0_stopped(temperature_campaign):
    from plumpy import ProcessState

    temperature_campaign.set_process_state(ProcessState.FINISHED)
    temperature_campaign.set_exit_status(0)  # aiida-core keeps no exit message for 0: the reason is an extra
    reason = 'reached T_max = 300 K after 3 temperature step(s); the final ramp failed (exit status 310: blew up)'
    temperature_campaign.base.extras.set('stop_reason', reason)
    result = CliRunner().invoke(cmd_root, ['status', str(temperature_campaign.pk)])
    assert result.exit_code == 0, result.output
    assert (
        result.output.splitlines()[0]
        == f'campaign {temperature_campaign.pk} (znim2-temperature): finished, exit status 0 ({reason})'
    )
    data = json.loads(CliRunner().invoke(cmd_root, ['status', str(temperature_campaign.pk), '--json']).stdout)
    assert data['exit_status'] == 0 and data['exit_message'] is None and data['stop_reason'] == reason
