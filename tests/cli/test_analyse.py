"""``mofal analyse glass``: JSON keys, PNG plots, files, frame slices, stored nodes, and the refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.io import write
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from tests.structure_files import DATA, read_structure

MOFAL = str(Path(sys.executable).parent / 'mofal')
CRYSTAL, GLASS, SOD = (
    str(DATA / name) for name in ('ZIF-4_Lewis2009.cif', 'ZIF-4_glass01_Gaillac2020.cif', 'ZnIm2-sod_Lewis2009.cif')
)


def _invoke(*args):
    return CliRunner().invoke(cmd_root, ['analyse', 'glass', *args])


def test_json_of_a_file_needs_no_profile_and_stdout_holds_only_the_json(tmp_path):
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path)}  # no AiiDA configuration at all
    done = subprocess.run(
        [MOFAL, 'analyse', 'glass', GLASS, '--reference', CRYSTAL, '--max-ring-size', '8', '--json'],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # fails if anything else was printed on stdout
    assert set(result) >= {'coordination', 'angles', 'density_g_cm3', 'rdf', 'pmf', 'rings', 'reference'}
    assert result['coordination']['Zn-N'] == 4.0
    angle = result['angles']['N-Zn-N']
    assert 105 < angle['mean'] < 112 and angle['std'] > 0
    assert len(angle['histogram']['theta_deg']) == len(angle['histogram']['density']) == 180
    assert set(result['rdf']) == {'Zn-N', 'Zn-Zn', 'N-N'}
    zn_n = result['rdf']['Zn-N']
    assert len(zn_n['r']) == len(zn_n['g']) == 200 and 1.9 < zn_n['first_peak'] < 2.1
    assert result['pmf']['Zn-N']['F_kJ_mol'][zn_n['r'].index(zn_n['first_peak'])] == 0.0
    assert result['rings'] == {'4': 4.0, '6': 16.0, '8': 32.0}
    assert result['reference']['rdf_r_chi']['Zn-N'] > 0


def test_plots_and_the_analysis_are_written_to_the_output_folder(tmp_path):
    out = tmp_path / 'report'
    done = _invoke(CRYSTAL, '--pairs', 'Zn-N,Zn-Zn', '--max-ring-size', '8', '-o', str(out))
    assert done.exit_code == 0, done.output
    for name in ('glass_rdf.png', 'glass_pmf.png', 'glass_angles.png', 'glass_rings.png'):
        assert (out / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n', name
    stored = json.loads((out / 'analysis.json').read_text())
    assert set(stored['rdf']) == {'Zn-N', 'Zn-Zn'}
    assert 'coordination Zn-N  4.000' in done.output and 'wrote' in done.output


def test_frames_of_an_extxyz_are_sliced_and_averaged(tmp_path):
    sod = read_structure('ZnIm2-sod_Lewis2009.cif')
    frames = []
    for scale in (1.0, 1.02, 1.04):
        frame = sod.copy()
        frame.set_cell(sod.cell * scale, scale_atoms=True)
        frames.append(frame)
    path = tmp_path / 'frames.extxyz'
    write(path, frames, format='extxyz')
    done = _invoke(str(path), '--frames', '1:', '--no-rings', '--json')
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result['n_frames'] == 2
    densities = [frame.get_masses().sum() * 1.66053906660 / frame.get_volume() for frame in frames[1:]]
    assert result['density_g_cm3'] == pytest.approx(np.mean(densities))
    assert result['density_g_cm3_std'] == pytest.approx(np.std(densities))
    assert 'rings' not in result or result['rings'] is None


def test_a_structure_without_zn_n_pairs_warns_and_reports_what_it_can():
    uio = str(DATA / 'UiO-66-Zr_Trousselet2016.cif')
    done = _invoke(uio, '--pairs', 'Zn-N,Zr-O', '--json')
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert 'no Zn-N pairs' in done.stderr and 'Zr' in done.stderr
    assert list(result['rdf']) == ['Zr-O'] and result['missing_pairs'] == ['Zn-N']


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--pairs', 'Zn-Q'], "unknown element 'Q'"),
        (['--pairs', 'ZnN'], 'two element symbols joined by "-"'),
        (['--frames', 'a:b'], 'is not a frame selection'),
        (['--frames', '::0'], 'is not a frame selection'),
        (['--frames', '5:'], 'selects no frame of the 1'),
        (['--max-ring-size', '1'], 'max_ring_size'),
        (['--bin-width', '20'], 'must be smaller than r_max'),
    ],
)
def test_bad_options_are_refused_with_the_fix(args, message):
    done = _invoke(SOD, *args)
    assert done.exit_code == 2
    assert message in done.output


def test_unreadable_files_and_unknown_identifiers_are_refused(tmp_path):
    broken = tmp_path / 'broken.cif'
    broken.write_text('data_x\n_cell_length_a nonsense\n')
    done = _invoke(str(broken))
    assert done.exit_code == 2 and 'ASE cannot read this file' in done.output and 'PK' in done.output
    done = _invoke(str(tmp_path / 'missing.cif'))
    assert done.exit_code == 2 and 'neither a readable file nor a stored node' in done.output


def test_stored_structure_and_trajectory_nodes(aiida_profile):
    from aiida import orm

    from aiida_mofal.data.trajectory import MdTrajectoryData

    sod = read_structure('ZnIm2-sod_Lewis2009.cif')
    structure = orm.StructureData(ase=sod).store()
    done = _invoke(str(structure.pk), '--max-ring-size', '8', '--json')
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)['rings'] == {'4': 3.0, '6': 4.0}

    rng = np.random.default_rng(0)
    positions = sod.positions[None] + rng.normal(scale=0.01, size=(4, len(sod), 3))
    cells = np.repeat(sod.cell.array[None], 4, axis=0)
    trajectory = MdTrajectoryData({'positions': positions, 'cells': cells}, numbers=sod.numbers).store()
    done = _invoke(str(trajectory.pk), '--frames', '::2', '--no-rings', '--json')
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result['n_frames'] == 2 and result['coordination']['Zn-N'] == 4.0

    dataset_like = orm.Int(3).store()
    done = _invoke(str(dataset_like.pk))
    assert done.exit_code == 2 and 'give a StructureData or a mofal.trajectory node' in done.output
