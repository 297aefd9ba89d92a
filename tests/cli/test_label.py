"""`mofal label` with real CP2K (GFN1-xTB) on the test profile: files in, data set out, extxyz exported."""

import json

import pytest
from ase.build import molecule
from ase.io import read, write
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from tests.structure_files import DATA


def mofal(*args):
    return CliRunner().invoke(cmd_root, list(args))


@pytest.mark.engine
def test_label_molecules_and_a_cut_cluster_in_one_run_and_export(mofal_codes, tmp_path):
    frames = [molecule('H2O'), molecule('NH3')]
    frames[1].positions *= 1.02
    write(tmp_path / 'molecules.xyz', frames)
    cut = mofal('clusters', str(DATA / 'ZnIm2-sod_Lewis2009.cif'), '--atoms', '0', '--merge-depth', '0',
                '-o', str(tmp_path / 'cut'), '--json')  # fmt: skip
    assert cut.exit_code == 0, cut.output
    (row,) = json.loads(cut.stdout)['clusters']
    result = mofal('label', str(tmp_path / 'molecules.xyz'), row['file'], '--cluster', '--protocol', 'xtb', '--json')
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # standard output holds only the JSON: the reports went to stderr
    assert summary['count'] == 3 and summary['failed'] == {} and summary['exit_status'] == 0
    assert summary['process'] == 'LabelWorkChain' and summary['pk'] == summary['workchain']
    assert set(summary['isolated_atom_energies']) == {'C', 'H', 'N', 'O', 'Zn'}

    shown = json.loads(mofal('dataset', 'show', str(summary['dataset']), '--json').stdout)
    assert shown['config_types'] == {'cluster': 3} and shown['level_of_theory']['method'] == 'GFN1-xTB'
    exported = mofal('dataset', 'export', str(summary['dataset']), str(tmp_path / 'out.xyz'))
    assert exported.exit_code == 0, exported.output
    water, ammonia, cluster = read(tmp_path / 'out.xyz', index=':')
    assert water.arrays['REF_forces'].shape == (3, 3) and 'REF_energy' in ammonia.info
    assert cluster.info['charge'] == row['charge'] and len(cluster) == row['atoms']
    assert list(cluster.arrays['role']).count('core') == row['core']  # roles survive labelling


@pytest.mark.engine
def test_label_a_cif_periodic_cell(mofal_codes, tmp_path):
    cell = molecule('CH4')
    cell.cell, cell.pbc = [5.0, 5.2, 5.4], True
    cell.positions += 2.5
    write(tmp_path / 'methane.cif', cell)  # CIF readers put a space-group object into info
    result = mofal('label', str(tmp_path / 'methane.cif'), '--protocol', 'xtb')
    assert result.exit_code == 0, result.output
    assert 'data set' in result.stdout and '1 of 1 structures labelled' in result.stdout
    pk = result.stdout.split('data set ')[1].split(':')[0]
    shown = json.loads(mofal('dataset', 'show', pk, '--json').stdout)
    assert shown['config_types'] == {'periodic': 1} and 'stress' in shown['labels']


def test_label_refuses_bad_input_before_submitting(mofal_codes, tmp_path):
    from aiida import orm

    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    water = molecule('H2O')
    write(tmp_path / 'water.xyz', water)
    not_periodic = mofal('label', str(tmp_path / 'water.xyz'), '--protocol', 'xtb')
    assert not_periodic.exit_code != 0 and 'pass --cluster' in not_periodic.output
    odd = mofal('label', str(tmp_path / 'water.xyz'), '--cluster', '--charge', '1', '--protocol', 'xtb')
    assert odd.exit_code != 0 and 'cannot have multiplicity 1' in odd.output
    typo = mofal('label', str(tmp_path / 'water.xyz'), '--cluster', '--protocol', 'xtbb')
    assert typo.exit_code != 0 and "Did you mean 'xtb'" in typo.output
    listed = mofal('label', str(tmp_path / 'water.xyz'), '--cluster', '--code', 'nope@localhost')
    assert listed.exit_code != 0 and 'mofal setup' in listed.output and '--code' in listed.output
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before
