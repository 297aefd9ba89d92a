"""`mofal label` end to end in a fresh project-local profile: files in, data set out, extxyz exported."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ase.build import molecule
from ase.io import read, write

MOFAL = str(Path(sys.executable).parent / 'mofal')

pytestmark = pytest.mark.engine


@pytest.fixture(scope='module')
def profile_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('mofal-cli')
    result = subprocess.run(
        [MOFAL, 'setup', '--json'], capture_output=True, text=True, env={**os.environ, 'AIIDA_PATH': str(path)}
    )
    assert result.returncode == 0, result.stderr
    return path


def mofal(*args, profile_dir):
    env = {**os.environ, 'AIIDA_PATH': str(profile_dir)}
    return subprocess.run([MOFAL, *args], capture_output=True, text=True, env=env, timeout=600)


def test_label_cluster_file_and_export(profile_dir, tmp_path):
    frames = [molecule('H2O'), molecule('NH3')]
    frames[1].positions *= 1.02
    write(tmp_path / 'molecules.xyz', frames)
    result = mofal(
        'label', str(tmp_path / 'molecules.xyz'), '--cluster', '--protocol', 'xtb', '--json', profile_dir=profile_dir
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary['count'] == 2 and summary['failed'] == {} and summary['exit_status'] == 0
    assert set(summary['isolated_atom_energies']) == {'H', 'N', 'O'}

    shown = json.loads(mofal('dataset', 'show', str(summary['dataset']), '--json', profile_dir=profile_dir).stdout)
    assert shown['config_types'] == {'cluster': 2} and shown['level_of_theory']['method'] == 'GFN1-xTB'
    exported = mofal('dataset', 'export', str(summary['dataset']), str(tmp_path / 'out.xyz'), profile_dir=profile_dir)
    assert exported.returncode == 0, exported.stderr
    back = read(tmp_path / 'out.xyz', index=':')
    assert len(back) == 2 and back[0].arrays['REF_forces'].shape == (3, 3)
    assert 'REF_energy' in back[1].info


def test_label_a_cluster_written_by_mofal_clusters(profile_dir, tmp_path):
    from tests.structure_files import DATA

    cut = mofal('clusters', str(DATA / 'ZnIm2-sod_Lewis2009.cif'), '--atoms', '0', '--merge-depth', '0',
                '-o', str(tmp_path / 'cut'), '--json', profile_dir=profile_dir)  # fmt: skip
    assert cut.returncode == 0, cut.stderr
    (row,) = json.loads(cut.stdout)['clusters']
    result = mofal('label', row['file'], '--cluster', '--protocol', 'xtb', '--json', profile_dir=profile_dir)
    assert result.returncode == 0, result.stderr
    exported = tmp_path / 'labelled.xyz'
    mofal('dataset', 'export', str(json.loads(result.stdout)['dataset']), str(exported), profile_dir=profile_dir)
    (cluster,) = read(exported, index=':')
    assert cluster.info['charge'] == row['charge'] and len(cluster) == row['atoms']
    assert list(cluster.arrays['role']).count('core') == row['core']  # roles survive labelling


def test_label_a_cif_periodic_cell(profile_dir, tmp_path):
    from ase.io import write as ase_write

    cell = molecule('CH4')
    cell.cell, cell.pbc = [5.0, 5.2, 5.4], True
    cell.positions += 2.5
    ase_write(tmp_path / 'methane.cif', cell)  # CIF readers put a space-group object into info
    result = mofal('label', str(tmp_path / 'methane.cif'), '--protocol', 'xtb', '--json', profile_dir=profile_dir)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    shown = json.loads(mofal('dataset', 'show', str(summary['dataset']), '--json', profile_dir=profile_dir).stdout)
    assert shown['config_types'] == {'periodic': 1} and 'stress' in shown['labels']


def test_label_refuses_bad_input_before_submitting(profile_dir, tmp_path):
    water = molecule('H2O')
    write(tmp_path / 'water.xyz', water)
    not_periodic = mofal('label', str(tmp_path / 'water.xyz'), '--protocol', 'xtb', profile_dir=profile_dir)
    assert not_periodic.returncode != 0 and 'pass --cluster' in not_periodic.stderr
    odd = mofal(
        'label', str(tmp_path / 'water.xyz'), '--cluster', '--charge', '1', '--protocol', 'xtb', profile_dir=profile_dir
    )
    assert odd.returncode != 0 and 'cannot have multiplicity 1' in odd.stderr
    typo = mofal('label', str(tmp_path / 'water.xyz'), '--cluster', '--protocol', 'xtbb', profile_dir=profile_dir)
    assert typo.returncode != 0 and "Did you mean 'xtb'" in typo.stderr
    listed = mofal(
        'label', str(tmp_path / 'water.xyz'), '--cluster', '--code', 'nope@localhost', profile_dir=profile_dir
    )
    assert listed.returncode != 0 and 'mofal setup' in listed.stderr
