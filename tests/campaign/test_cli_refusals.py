"""`mofal run` refuses a campaign that cannot run before anything is submitted: typo, missing code, bad element."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MOFAL = str(Path(sys.executable).parent / 'mofal')


@pytest.fixture(scope='module')
def profile_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('mofal-run')
    env = {**os.environ, 'AIIDA_PATH': str(path)}
    assert subprocess.run([MOFAL, 'setup'], capture_output=True, env=env).returncode == 0
    return path


def mofal_run(config: dict, folder: Path, profile_dir: Path):
    path = folder / 'campaign.yaml'
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, 'AIIDA_PATH': str(profile_dir)}
    result = subprocess.run([MOFAL, 'run', str(path)], capture_output=True, text=True, env=env, timeout=300)
    count = (
        'from aiida import load_profile, orm; load_profile(); print(orm.QueryBuilder().append(orm.ProcessNode).count())'
    )
    processes = subprocess.run([sys.executable, '-c', count], capture_output=True, text=True, env=env).stdout.strip()
    return result, int(processes)


@pytest.fixture
def config():
    data = yaml.safe_load((ROOT / 'examples' / 'campaign_znim2.yaml').read_text())
    data['targets'][0]['structure'] = str(ROOT / 'tests' / 'data_files' / 'structures' / 'ZnIm2-sod_Lewis2009.cif')
    return data


def test_typo_is_refused_with_its_line(config, tmp_path, profile_dir):
    config['stop']['max_cycle'] = config['stop'].pop('max_cycles')
    result, processes = mofal_run(config, tmp_path, profile_dir)
    assert result.returncode != 0 and "stop.max_cycle: unknown key (did you mean 'max_cycles'?)" in result.stderr
    assert processes == 0


def test_missing_code_is_refused(config, tmp_path, profile_dir):
    config['resources']['cp2k']['code'] = 'cp2k@cluster'
    result, processes = mofal_run(config, tmp_path, profile_dir)
    assert result.returncode != 0 and "resources.cp2k.code: no code 'cp2k@cluster'" in result.stderr
    assert processes == 0


def test_an_element_the_label_protocol_cannot_do_is_refused(config, tmp_path, profile_dir):
    from ase.io import read, write

    atoms = read(config['targets'][0]['structure'])
    atoms.symbols[atoms.numbers == 30] = 'U'  # GFN1-xTB stops at Rn
    write(tmp_path / 'uranium.cif', atoms)
    config['targets'][0]['structure'] = str(tmp_path / 'uranium.cif')
    result, processes = mofal_run(config, tmp_path, profile_dir)
    assert result.returncode != 0 and 'GFN1-xTB has no parameters for U' in result.stderr
    assert processes == 0


def test_bad_protocol_overrides_are_refused_before_submission(config, tmp_path, profile_dir):
    config['train']['overrides'] = {'hyperparameters': {'num_chanels': 32}}
    result, processes = mofal_run(config, tmp_path, profile_dir)
    assert result.returncode != 0 and 'train:' in result.stderr and 'num_chanels' in result.stderr
    config['train']['overrides'] = {}
    config['density'] = {'settings': {'max_component': 4}}
    result, processes = mofal_run(config, tmp_path, profile_dir)
    assert result.returncode != 0 and 'density.settings' in result.stderr and 'max_component' in result.stderr
    assert processes == 0
