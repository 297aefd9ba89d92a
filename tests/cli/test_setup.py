"""The `mofal` command: setup (idempotent, project-local AIIDA_PATH), doctor, dataset import/show/export."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from ase.build import molecule
from ase.io import write
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root

MOFAL = str(Path(sys.executable).parent / 'mofal')


def _mofal(*args, aiida_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, 'AIIDA_PATH': str(aiida_path)}
    return subprocess.run([MOFAL, *args], capture_output=True, text=True, env=env, timeout=300)


def test_setup_is_idempotent_and_doctor_reports_the_toolchain(tmp_path):
    first = _mofal('setup', '--json', aiida_path=tmp_path)
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert created['created'] is True
    assert created['storage'] == 'core.sqlite_dos' and created['broker'] == 'core.zeromq'
    assert created['codes'] == {
        'cp2k': 'cp2k@localhost',
        'lammps': 'lammps@localhost',
        'python-mace': 'python-mace@localhost',
    }
    assert Path(created['config_dir']).is_relative_to(tmp_path)

    second = json.loads(_mofal('setup', '--json', aiida_path=tmp_path).stdout)
    assert second['created'] is False
    assert second['codes'] == created['codes']
    assert all('exists' in line for line in second['report'][1:])

    doctor = _mofal('doctor', '--json', aiida_path=tmp_path)
    report = json.loads(doctor.stdout)
    checks = report['checks']
    assert checks['profile']['value']['name'] == 'mofal'
    assert checks['cp2k']['ok'] and checks['cp2k']['value']['version'].startswith('CP2K version')
    assert {'REAXFF', 'ML-IAP', 'EXTRA-FIX'} <= set(checks['lammps']['value']['packages'])
    assert checks['lammps']['value']['fix_external'] is True
    assert checks['mace']['ok'] and checks['torch']['ok']
    assert report['ok'] is True and doctor.returncode == 0
    # a missing piece is reported with its fix: no daemon runs here
    assert checks['daemon']['ok'] is False and checks['daemon']['fix'] == 'verdi daemon start'

    # the README's path: a foreground run in this fresh profile, with no daemon and so no ZeroMQ broker service
    # (aiida-core's usual runner would wait 10 s for it and raise ConnectionError)
    write(tmp_path / 'water.xyz', molecule('H2O'))
    water = str(tmp_path / 'water.xyz')
    label = _mofal('label', water, '--cluster', '--protocol', 'xtb', '--json', aiida_path=tmp_path)
    assert label.returncode == 0, label.stderr
    summary = json.loads(label.stdout)
    assert 'ConnectionError' not in label.stderr and summary['count'] == 1 and summary['exit_status'] == 0


def test_doctor_without_profile_says_how_to_fix_it(tmp_path):
    result = _mofal('doctor', '--json', aiida_path=tmp_path)
    report = json.loads(result.stdout)
    assert report['checks']['profile']['ok'] is False
    assert report['checks']['profile']['fix'] == 'mofal setup'
    assert result.returncode == 1


def test_dataset_import_show_export(aiida_profile, tmp_path):
    frames = []
    rng = np.random.default_rng(0)
    for _ in range(2):
        atoms = molecule('H2O')
        atoms.center(vacuum=3)
        atoms.pbc = False
        atoms.info['REF_energy'] = float(rng.normal(-470, 1))
        atoms.arrays['REF_forces'] = rng.normal(size=(3, 3))
        frames.append(atoms)
    source = tmp_path / 'in.xyz'
    write(source, frames, format='extxyz')
    runner = CliRunner()
    result = runner.invoke(cmd_root, ['dataset', 'import', str(source), '--json'])
    assert result.exit_code == 0, result.output
    pk = json.loads(result.output)['pk']
    shown = json.loads(runner.invoke(cmd_root, ['dataset', 'show', str(pk), '--json']).output)
    assert shown['count'] == 2 and shown['labels'] == ['energy', 'forces'] and shown['config_types'] == {'cluster': 2}
    target = tmp_path / 'out.xyz'
    assert runner.invoke(cmd_root, ['dataset', 'export', str(pk), str(target)]).exit_code == 0
    assert 'REF_energy=' in target.read_text()
    # refusing to overwrite, and refusing a bad file with a message naming the problem
    again = runner.invoke(cmd_root, ['dataset', 'export', str(pk), str(target)])
    assert again.exit_code != 0 and 'use --force' in again.output
    frames[1].arrays['REF_forces'][0, 0] = np.nan
    write(source, frames, format='extxyz')
    bad = runner.invoke(cmd_root, ['dataset', 'import', str(source)])
    assert bad.exit_code != 0 and 'configuration 1' in bad.output and 'NaN' in bad.output
