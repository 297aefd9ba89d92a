"""`verdi data mofal.dataset | mofal.mace_model | mofal.trajectory`: found through the entry points by verdi itself,
list (aiida-core's query and options), show (text and JSON) and export (printed, to a file, refused overwrite)."""

import json

import numpy as np
import pytest
from aiida.cmdline.commands.cmd_verdi import verdi
from click.testing import CliRunner

from aiida_mofal.data import DatasetData, MaceModelData, MdTrajectoryData
from aiida_mofal.mlp.configurations import read_extxyz


def invoke(*args):
    result = CliRunner().invoke(verdi, ['data', *args], catch_exceptions=False)
    return result


@pytest.fixture(scope='module')
def nodes(aiida_profile, tiny_mace_model_file):
    from tests.conftest import XTB, XTB_NAME

    frames = read_extxyz(str(XTB / f'{XTB_NAME}.extxyz'))[:3]
    dataset = DatasetData(frames, level_of_theory={'code': 'CP2K', 'method': 'GFN1-xTB'}, label='three-xtb').store()
    model = MaceModelData(tiny_mace_model_file, hyperparameters={'r_max': 4.5}, label='tiny', trusted=True).store()
    water = frames[0]
    positions = np.stack([water.positions + 0.01 * step for step in range(4)])
    trajectory = MdTrajectoryData(
        {'steps': np.arange(4), 'positions': positions, 'cells': np.stack([np.eye(3) * 10.0] * 4)},
        {'temperature': np.array([300.0, 310.0, 290.0, 300.0])},
        numbers=water.numbers,
        engine='ase',
        ensemble='nvt',
        timestep=0.5,
        label='four-frames',
    ).store()
    return dataset, model, trajectory


def test_verdi_finds_the_three_groups_through_the_entry_points(nodes):
    result = invoke('--help')
    for name in ('mofal.dataset', 'mofal.mace_model', 'mofal.trajectory'):
        assert name in result.output


def test_list_shows_the_stored_attributes_as_columns(nodes):
    dataset, model, trajectory = nodes
    result = invoke('mofal.dataset', 'list')
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.split()[:1] == [str(dataset.pk)])
    assert 'three-xtb' in row and ' 3 ' in row and 'GFN1-xTB' in row and 'energy,forces' in row
    assert 'Total results:' in result.output
    raw = invoke('mofal.mace_model', 'list', '--raw').output
    assert any(line.split()[:2] == [str(model.pk), 'tiny'] and 'H,O' in line for line in raw.splitlines())
    listed = invoke('mofal.trajectory', 'list').output
    assert any(
        line.split()[:1] == [str(trajectory.pk)] and 'nvt' in line and '300' in line for line in listed.splitlines()
    )


def test_show_prints_the_summary_or_json(nodes):
    dataset, model, trajectory = nodes
    summary = json.loads(invoke('mofal.dataset', 'show', str(dataset.pk), '--json').output)
    assert summary['count'] == 3 and summary['labels'] == dataset.labels and summary['uuid'] == dataset.uuid
    text = invoke('mofal.mace_model', 'show', str(model.pk)).output
    assert 'r_max' in text and '4.5' in text and model.base.attributes.get('sha256') in text
    shown = json.loads(invoke('mofal.trajectory', 'show', str(trajectory.pk), '--json').output)
    assert shown['num_frames'] == 4 and shown['summary']['temperature']['mean'] == pytest.approx(300.0)
    refused = CliRunner().invoke(verdi, ['data', 'mofal.dataset', 'show', str(model.pk)])
    assert refused.exit_code != 0


def test_export_prints_writes_and_refuses_to_overwrite(nodes, tmp_path):
    dataset, model, trajectory = nodes
    printed = invoke('mofal.dataset', 'export', str(dataset.pk)).output
    assert printed == dataset.get_text()
    target = tmp_path / 'set.extxyz'
    assert invoke('mofal.dataset', 'export', str(dataset.pk), '-o', str(target)).exit_code == 0
    assert len(read_extxyz(str(target))) == 3
    again = CliRunner().invoke(verdi, ['data', 'mofal.dataset', 'export', str(dataset.pk), '-o', str(target)])
    assert again.exit_code != 0 and 'exists' in again.output
    model_file = tmp_path / 'tiny.model'
    assert invoke('mofal.mace_model', 'export', str(model.pk), '-o', str(model_file)).exit_code == 0
    again = MaceModelData(model_file, trusted=True)  # the file as written for MACE itself: a full model
    assert again.elements == model.elements and again.r_max == model.r_max
    frames = tmp_path / 'frames.extxyz'
    assert invoke('mofal.trajectory', 'export', str(trajectory.pk), '--every', '2', '-o', str(frames)).exit_code == 0
    assert len(read_extxyz(str(frames))) == 2
