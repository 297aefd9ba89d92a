"""Issue 18, class 9 (no tracebacks for user errors): each bad input ends in one clear message and stores nothing."""

import pytest
from aiida import orm
from ase.build import molecule
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root


def mofal(*args):
    return CliRunner().invoke(cmd_root, [str(arg) for arg in args])


def _nodes() -> int:
    return orm.QueryBuilder().append(orm.Node).count()


def _refused(result, message: str) -> None:
    assert result.exit_code != 0, result.output
    assert message in result.output, result.output
    assert 'Traceback' not in result.output and not isinstance(result.exception, (TypeError, KeyError, AttributeError))


def _extxyz(path, energy='-470.0', forces='0.0'):
    path.write_text(
        '3\nProperties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=' + energy + ' pbc="F F F"\n'
        f'O 0 0 0 {forces} 0 0\nH 0.96 0 0 0 0 0\nH -0.24 0.93 0 0 0 0\n'
    )
    return path


@pytest.mark.parametrize(
    ('energy', 'forces', 'message'),
    [
        ('1e308', '0.0', 'eV per atom; no energy is beyond'),
        ('-470.0', '1e300', 'eV/Å is beyond'),
    ],
)
def test_absurd_labels_are_refused_on_import(aiida_profile, tmp_path, energy, forces, message):
    before = _nodes()
    _refused(mofal('dataset', 'import', _extxyz(tmp_path / 'bad.xyz', energy, forces)), message)
    assert _nodes() == before


def test_an_empty_import_and_an_export_into_a_missing_folder_are_refused(aiida_profile, tmp_path):
    from aiida_mofal.data import DatasetData

    (tmp_path / 'empty.xyz').write_text('')
    before = _nodes()
    _refused(mofal('dataset', 'import', tmp_path / 'empty.xyz'), 'no configurations found; nothing was stored')
    assert _nodes() == before
    water = molecule('H2O')
    water.info.update(charge=0, multiplicity=1)
    node = DatasetData([water]).store()
    _refused(mofal('dataset', 'export', node.pk, tmp_path / 'nowhere' / 'out.xyz'), 'does not exist; create it')
    assert not (tmp_path / 'nowhere').exists()


def test_status_and_report_of_a_node_that_is_no_campaign(aiida_profile, tmp_path):
    node = orm.Int(5).store()
    _refused(mofal('status', node.pk), 'is a Int, not a campaign')
    _refused(mofal('report', node.pk, '-o', tmp_path / 'report'), 'not a campaign')
    assert not (tmp_path / 'report').exists()


def test_override_with_a_yaml_tag_is_refused_before_anything(mofal_codes, xtb_dataset):
    before = _nodes()
    result = mofal('train', xtb_dataset.pk, '--override', 'hyperparameters.lr=!!python/object/apply:os.getcwd []')
    _refused(result, '--override hyperparameters.lr')
    assert _nodes() == before


PARTIAL_CIF = """data_disordered
_cell_length_a 10.0
_cell_length_b 10.0
_cell_length_c 10.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Zn1 Zn 0.0 0.0 0.0 1.0
O1 O 0.2 0.0 0.0 0.5
O2 O 0.0 0.2 0.0 0.5
"""


def test_clusters_and_md_validate_their_input_like_label(mofal_codes, tmp_path):
    """Issue 18, class 8: overlapping atoms, partial occupancy and an absurd vacuum are refused up front."""
    from ase import Atoms
    from ase.io import write

    close = Atoms('ZnO', positions=[[0, 0, 0], [0.04, 0, 0]], cell=[8, 8, 8], pbc=True)
    write(tmp_path / 'close.cif', close)
    (tmp_path / 'partial.cif').write_text(PARTIAL_CIF)
    before = _nodes()
    for name, message in (('close.cif', 'closer than 0.5 Å'), ('partial.cif', 'partially occupied site')):
        _refused(mofal('clusters', tmp_path / name, '--atoms', '0', '-o', tmp_path / 'out'), message)
        _refused(mofal('md', tmp_path / name, '--model', '1', '--steps', '5'), message)
    _refused(mofal('clusters', tmp_path / 'close.cif', '--atoms', '0', '--vacuum', '1e308', '-o', tmp_path / 'out'),
             'is not in the range')  # fmt: skip
    assert _nodes() == before and not (tmp_path / 'out').exists()
