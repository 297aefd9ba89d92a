"""`mofal select cbad`: --json, --scan, -o, a mofal.trajectory PK, --from-dataset, and refusals."""

import json

import ase.io
import numpy as np
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from aiida_mofal.selection.cbad import CbadOccupancy, CbadTopology, check_resolutions
from tests.selection.conftest import peroxide

RESOLUTIONS = ['--resolution', 'dihedral=15', '--resolution', 'bond=0.5', '--resolution', 'angle=30']


def _frames():
    """Nine peroxide frames whose dihedral wanders; the first is also the reference."""
    dihedrals = [110.0, 112.0, -100.0, 113.0, -95.0, 40.0, 41.0, 170.0, -100.0]
    return [peroxide(d) for d in dihedrals]


def _write(tmp_path):
    frames = _frames()
    ase.io.write(tmp_path / 'frames.extxyz', frames, format='extxyz')
    ase.io.write(tmp_path / 'reference.cif', frames[0])
    return tmp_path / 'frames.extxyz', tmp_path / 'reference.cif'


def _expected(resolutions):
    frames = _frames()
    topology = CbadTopology.from_reference(frames[0])
    return CbadOccupancy(check_resolutions(resolutions)).select(topology, frames).tolist()


def test_json_lists_the_selected_frames_and_writes_them(tmp_path):
    frames, reference = _write(tmp_path)
    out = tmp_path / 'chosen.extxyz'
    result = CliRunner().invoke(
        cmd_root, ['select', 'cbad', str(frames), '--reference', str(reference), *RESOLUTIONS, '-o', str(out), '--json']
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = _expected({'dihedral': 15, 'bond': 0.5, 'angle': 30})
    assert data['selected'] == expected == [0, 2, 5, 7]
    assert data['n_frames'] == 9 and data['n_selected'] == 4
    assert data['descriptor_types'] == {'cell_length': 3, 'cell_angle': 3, 'bond': 2, 'angle': 1, 'dihedral': 1}
    assert data['atom_types'] == ['H[O(H,O)]', 'O[H(O),O(H,O)]']
    written = ase.io.read(out, index=':')
    assert len(written) == 4
    np.testing.assert_allclose(written[2].positions, _frames()[5].positions)


def test_scan_shrinks_the_selection_as_resolutions_grow(tmp_path):
    frames, reference = _write(tmp_path)
    args = ['select', 'cbad', str(frames), '--reference', str(reference), *RESOLUTIONS, '--scan']
    result = CliRunner().invoke(cmd_root, [*args, '--scan-factors', '0.5,1,4', '--json'])
    assert result.exit_code == 0, result.output
    scan = json.loads(result.output)['scan']
    assert [row['factor'] for row in scan] == [0.5, 1.0, 4.0]
    assert [row['n_selected'] for row in scan] == [
        len(_expected({'dihedral': 15 * f, 'bond': 0.5 * f, 'angle': 30 * f})) for f in (0.5, 1, 4)
    ]
    assert scan[2]['resolutions']['dihedral'] == 60.0
    assert scan[0]['n_selected'] >= scan[1]['n_selected'] >= scan[2]['n_selected']
    text = CliRunner().invoke(cmd_root, args)
    assert text.exit_code == 0 and 'factor' in text.output and '4 of 9 frames selected' in text.output


def test_trajectory_pk_and_training_set_start(aiida_profile, tmp_path):
    from aiida_mofal.data import DatasetData
    from aiida_mofal.data.trajectory import MdTrajectoryData

    frames = _frames()
    trajectory = MdTrajectoryData(
        {'positions': np.stack([a.positions for a in frames]), 'cells': np.stack([a.cell.array for a in frames])},
        numbers=frames[0].numbers,
    ).store()
    _, reference = _write(tmp_path)
    args = ['select', 'cbad', str(trajectory.pk), '--reference', str(reference), *RESOLUTIONS, '--json']
    result = CliRunner().invoke(cmd_root, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)['selected'] == [0, 2, 5, 7]
    # a training set that already holds frames 2 and 5 leaves only the bins of 0 and 7 to find
    training = DatasetData([frames[2], frames[5]]).store()
    result = CliRunner().invoke(cmd_root, [*args, '--from-dataset', str(training.pk)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)['selected'] == [0, 7]


def test_refusals_name_the_problem(tmp_path):
    frames, reference = _write(tmp_path)
    base = ['select', 'cbad', str(frames), '--reference', str(reference)]
    bad = CliRunner().invoke(cmd_root, [*base, '--resolution', 'dihedrals=10'])
    assert bad.exit_code != 0 and "Did you mean 'dihedral'" in bad.output
    bad = CliRunner().invoke(cmd_root, [*base, '--resolution', 'bond=0'])
    assert bad.exit_code != 0 and 'finite number > 0' in bad.output
    bad = CliRunner().invoke(cmd_root, [*base, '--resolution', 'bond'])
    assert bad.exit_code != 0 and 'FAMILY=VALUE' in bad.output
    other = tmp_path / 'other.cif'
    ase.io.write(other, peroxide()[[1, 0, 2, 3]])  # O first: the atoms are not in the reference's order
    bad = CliRunner().invoke(cmd_root, ['select', 'cbad', str(frames), '--reference', str(other)])
    assert bad.exit_code != 0 and 'same order' in bad.output
