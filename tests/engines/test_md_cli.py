"""`mofal md` (MACE and --reaxff) and `mofal traj` through click's runner on the test profile, with the real engines."""

import json

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import pytest
from ase.build import bulk
from ase.io import write
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from aiida_mofal.mlp.configurations import read_extxyz
from tests.structure_files import read_structure

from .md_driver import MODEL

pytestmark = pytest.mark.engine


def test_md_and_traj_commands(aiida_profile, mofal_codes, tmp_path):
    structure = tmp_path / 'cu.extxyz'
    write(structure, bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2))
    runner = CliRunner()
    args = ['md', str(structure), '--model', str(MODEL), '--trust-model-file', '--engine', 'lammps-python',
            '--ensemble', 'npt', '--temperature', '300', '--pressure', '0', '--steps', '20', '--timestep', '2',
            '--dump-every', '5', '--json']  # fmt: skip
    result = runner.invoke(cmd_root, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds only the JSON (reports and library chatter go to stderr)
    assert summary['exit_status'] == 0 and summary['engine'] == 'lammps-python'
    assert set(summary) >= {'pk', 'temperature', 'pressure', 'volume'} and summary['volume']['mean'] > 0

    shown = json.loads(runner.invoke(cmd_root, ['traj', 'show', str(summary['trajectory']), '--json']).output)
    assert shown['num_frames'] == 5 and shown['num_atoms'] == 32 and shown['completed_steps'] == 20
    target = tmp_path / 'frames.xyz'
    exported = runner.invoke(cmd_root, ['traj', 'export', str(summary['trajectory']), str(target), '--every', '2'])
    assert exported.exit_code == 0, exported.output
    frames = read_extxyz(str(target))
    assert len(frames) == 3 and 'REF_stress' in frames[0].info
    again = runner.invoke(cmd_root, ['traj', 'export', str(summary['trajectory']), str(target)])
    assert again.exit_code != 0 and 'use --force' in again.output
    bad = runner.invoke(
        cmd_root, ['md', str(structure), '--model', str(MODEL), '--trust-model-file', '--temperature', 'hot']
    )
    assert bad.exit_code != 0 and 'START:END' in bad.output


def test_md_reaxff_command(aiida_profile, mofal_codes, tmp_path):
    structure = tmp_path / 'znim2.cif'
    write(structure, read_structure('ZnIm2-sod_Lewis2009.cif'))
    runner = CliRunner()
    args = ['md', str(structure), '--reaxff', '--minimize', '--steps', '10', '--dump-every', '5', '--json']
    result = runner.invoke(cmd_root, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary['exit_status'] == 0 and summary['engine'] == 'lammps-reaxff' and summary['num_frames'] == 3
    assert summary['num_atoms'] == 102 and summary['completed_steps'] == 10
    both = runner.invoke(cmd_root, ['md', str(structure), '--reaxff', '--model', str(MODEL)])
    assert both.exit_code != 0 and 'one of them' in both.output
