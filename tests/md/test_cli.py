"""`mofal md` and `mofal traj` through click's runner on the test profile, with the real engine."""

import json

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import pytest
from ase.build import bulk
from ase.io import write
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from aiida_mofal.cli.cmd_md import build_overrides
from aiida_mofal.md.protocol import load_md_settings
from aiida_mofal.mlp.configurations import read_extxyz


def test_build_overrides_makes_one_stage_from_the_options():
    overrides = build_overrides('explore', 'npt', [300.0, 600.0], 1.0, 50, 1.0, 5, 3)
    settings = load_md_settings('explore', overrides)
    assert settings['schedule'] == [{'steps': 50, 'temperature': [300.0, 600.0], 'pressure': [1.0, 1.0],
                                     'timestep': 1.0}]  # fmt: skip
    assert settings['dump_every'] == 5 and settings['seed'] == 3
    nve = load_md_settings('nve', build_overrides('nve', None, None, None, 20, None, None, None))
    assert nve['schedule'][0]['steps'] == 20 and nve['schedule'][0]['temperature'] is None


@pytest.mark.engine
def test_md_and_traj_commands(aiida_profile, mofal_codes, cu_model_file, tmp_path):
    structure = tmp_path / 'cu.extxyz'
    write(structure, bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2))
    runner = CliRunner()
    args = ['md', str(structure), '--model', str(cu_model_file), '--engine', 'lammps-python', '--ensemble', 'npt',
            '--temperature', '300', '--pressure', '0', '--steps', '20', '--timestep', '2', '--dump-every', '5',
            '--json']  # fmt: skip
    result = runner.invoke(cmd_root, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds only the JSON (reports and library chatter go to stderr)
    assert summary['exit_status'] == 0 and summary['engine'] == 'lammps-python'
    assert set(summary) >= {'pk', 'temperature', 'pressure', 'volume'}
    assert summary['volume']['mean'] > 0 and summary['temperature']['std'] >= 0

    shown = json.loads(runner.invoke(cmd_root, ['traj', 'show', str(summary['trajectory']), '--json']).output)
    assert shown['num_frames'] == 5 and shown['num_atoms'] == 32 and shown['completed_steps'] == 20
    target = tmp_path / 'frames.xyz'
    exported = runner.invoke(cmd_root, ['traj', 'export', str(summary['trajectory']), str(target), '--every', '2'])
    assert exported.exit_code == 0, exported.output
    frames = read_extxyz(str(target))
    assert len(frames) == 3 and 'REF_stress' in frames[0].info
    again = runner.invoke(cmd_root, ['traj', 'export', str(summary['trajectory']), str(target)])
    assert again.exit_code != 0 and 'use --force' in again.output

    bad = runner.invoke(cmd_root, ['md', str(structure), '--model', str(cu_model_file), '--temperature', 'hot'])
    assert bad.exit_code != 0 and 'START:END' in bad.output
