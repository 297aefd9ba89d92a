"""`mofal build uio66` and `mofal clusters --atoms`: files out with the metadata labelling needs."""

import json

import numpy as np
from ase.io import read
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from tests.structure_files import DATA


def invoke(*args):
    return CliRunner().invoke(cmd_root, list(args), catch_exceptions=False)


def test_build_uio66_reports_what_it_removed(tmp_path):
    result = invoke('build', 'uio66', '--supercell', '1', '--linker', '0.25', '--hf', '0.5', '--seed', '3',
                    '-o', str(tmp_path / 'cell.xyz'), '--json')  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    atoms = read(tmp_path / 'cell.xyz')
    assert summary['atoms'] == len(atoms) and summary['n_linkers_removed'] == 6  # round(0.25 x 24)
    assert summary['c_hf'] == 0.5 and int(np.sum(atoms.numbers == 72)) == summary['n_hf']
    invoke('build', 'uio66', '--supercell', '1', '--linker', '0.25', '--hf', '0.5', '--seed', '3',
                   '-o', str(tmp_path / 'again.xyz'), '--json')  # fmt: skip
    assert np.allclose(read(tmp_path / 'again.xyz').positions, atoms.positions)  # same seed, same cell


def test_clusters_writes_one_extxyz_per_cluster_with_charge_and_roles(tmp_path):
    source = DATA / 'ZnIm2-sod_Lewis2009.cif'
    framework = read(source)
    zincs = np.flatnonzero(framework.numbers == 30)[:2]
    result = invoke('clusters', str(source), '--atoms', ','.join(map(str, zincs)), '--merge-depth', '0',
                    '-o', str(tmp_path / 'out'), '--json')  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)['clusters']
    assert len(rows) == 2
    for row in rows:
        cluster = read(row['file'], format='extxyz')
        assert cluster.info['charge'] == 2 and cluster.info['multiplicity'] == 1
        assert cluster.info['config_type'] == 'cluster' and not cluster.pbc.any()
        assert set(cluster.arrays['role']) == {'core', 'mantle', 'cap'}
        caps = cluster.arrays['role'] == 'cap'
        assert (cluster.arrays['parent_index'][caps] == -1).all()
        assert (cluster.arrays['parent_index'][~caps] >= 0).all()
        assert row['atoms'] == len(cluster) == 37


def test_clusters_refuses_bad_indices_and_missing_choice(tmp_path):
    source = str(DATA / 'ZnIm2-sod_Lewis2009.cif')
    runner = CliRunner()
    out_of_range = runner.invoke(cmd_root, ['clusters', source, '--atoms', '0,500', '-o', str(tmp_path)])
    assert out_of_range.exit_code != 0 and '[500] outside 0..101' in out_of_range.output
    neither = runner.invoke(cmd_root, ['clusters', source, '-o', str(tmp_path)])
    assert neither.exit_code != 0 and 'either --atoms or both --model and --density' in neither.output
    garbage = runner.invoke(cmd_root, ['clusters', source, '--atoms', 'a,b', '-o', str(tmp_path)])
    assert garbage.exit_code != 0 and '0-based atom indices' in garbage.output


def test_build_uio66_preset_prints_the_characterisation(tmp_path):
    result = invoke('build', 'uio66', '--preset', 'S_reo', '--seed', '2', '-o', str(tmp_path / 'reo.xyz'), '--json')
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary['atoms'] == 294 and summary['preset'] == 'S_reo'
    assert (summary['c_hf'], summary['c_brick'], summary['c_linker']) == (0.0, 0.25, 0.5)
    refused = CliRunner().invoke(cmd_root, ['build', 'uio66', '--preset', 'S_ld', '--linker', '0.1', '-o', 'x.xyz'])
    assert refused.exit_code != 0 and '--preset fixes the cell' in refused.output


def test_validate_reports_core_force_errors_per_mantle_depth(aiida_profile, uio66_mace_model_file, tmp_path):
    from ase.io import write

    from aiida_mofal.data import MaceModelData
    from aiida_mofal.structures.uio66 import uio66_unit_cell

    model = MaceModelData(uio66_mace_model_file, trusted=True).store()
    cell = uio66_unit_cell()
    path = tmp_path / 'uio66.xyz'
    write(path, cell)
    ring_h = int(np.flatnonzero(cell.numbers == 1)[0])  # an H of a C6H4 ring: the core is one linker
    args = ['clusters', str(path), '--atoms', str(ring_h), '--validate', '--model', str(model.pk)]
    result = invoke(*args, '--merge-depth', '0', '--threshold', '10', '--json')
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report['depths']) == {'0', '1', '2'} and all(row['clusters'] == 1 for row in report['depths'].values())
    depth0, depth2 = (report['depths'][d]['core_force_rmse_max_mev_per_a'] for d in ('0', '2'))
    assert depth0 > 0 and depth2 < depth0  # a wider mantle encloses more of the core's bulk environment
    assert report['cheapest_depth'] == 0  # everything is below 10 eV/Å
    refused = CliRunner().invoke(cmd_root, ['clusters', str(path), '--validate', '--atoms', '0'])
    assert refused.exit_code != 0 and '--validate needs --model' in refused.output
