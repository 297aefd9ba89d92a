"""Issue 18, class 2 (model files run code): models are stored and loaded as weights, pickles only when trusted.

A pickle that would create a file when unpickled stands in for a hostile ``.model``: it is refused by the data
plugin, by ``mofal md --model`` and, planted in a node that travels through an exported and re-imported archive,
by every use of that node; the file is never created and nothing is stored.
"""

import io

import pytest
import torch
from ase.build import molecule
from click.testing import CliRunner

from aiida_mofal.data import MaceModelData
from aiida_mofal.mlp.safe_model import FORMAT, UnsafeModelError, load_model


class _Payload:
    """Unpickling this calls ``open(marker, 'w')``: creating the marker file is the proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


@pytest.fixture
def hostile_model(tmp_path):
    marker = tmp_path / 'owned'
    path = tmp_path / 'pretrained.model'
    torch.save(_Payload(marker), path)
    return path, marker


def test_a_pickle_is_refused_unless_trusted_and_runs_no_code(hostile_model):
    path, marker = hostile_model
    with pytest.raises(UnsafeModelError, match='--trust-model-file'):
        MaceModelData(path)
    with pytest.raises(UnsafeModelError, match='not a weights-only MACE model file'):
        load_model(path)
    assert not marker.exists()


def test_trusted_file_is_converted_and_predicts_the_same(aiida_profile, tiny_mace_model_file):
    node = MaceModelData(tiny_mace_model_file, trusted=True).store()
    assert node.base.repository.list_object_names() == [MaceModelData.FILENAME]
    content = node.base.repository.get_object_content(MaceModelData.FILENAME, mode='rb')
    stored = torch.load(io.BytesIO(content), weights_only=True)  # what is stored is plain data: weights_only reads it
    assert stored['format'] == FORMAT and stored['model_class'] == 'ScaleShiftMACE'
    original = load_model(tiny_mace_model_file, trusted=True)
    from mace.calculators import MACECalculator

    water = molecule('H2O')
    water.calc = MACECalculator(models=[original], device='cpu', default_dtype='float64')
    expected = water.get_potential_energy()
    water.calc = node.get_calculator()
    assert water.get_potential_energy() == pytest.approx(expected, abs=1e-12)


def test_forged_weights_file_naming_other_classes_is_refused(tmp_path):
    path = tmp_path / 'forged.pt'
    torch.save({'format': FORMAT, 'model_class': 'ScaleShiftMACE', 'dtype': 'float64',
                'config': {'interaction_cls': {'__interaction__': 'Popen'}}, 'state_dict': {}}, path)  # fmt: skip
    with pytest.raises(UnsafeModelError, match="'Popen' is not a MACE building block"):
        load_model(path)
    torch.save({'format': FORMAT, 'model_class': 'os.system', 'config': {}, 'state_dict': {}}, path)
    with pytest.raises(UnsafeModelError, match='is not one of MACE, ScaleShiftMACE'):
        load_model(path)


def test_a_pickle_inside_an_imported_archive_is_never_loaded(aiida_profile, tiny_mace_model_file, hostile_model,
                                                             tmp_path):  # fmt: skip
    from aiida import orm
    from aiida.tools import delete_nodes
    from aiida.tools.archive import create_archive, import_archive

    path, marker = hostile_model
    node = MaceModelData(tiny_mace_model_file, trusted=True)
    node.base.repository.put_object_from_bytes(path.read_bytes(), MaceModelData.FILENAME)  # planted by someone
    node.store()
    archive, uuid = tmp_path / 'shared.aiida', node.uuid
    create_archive([node], filename=archive)
    delete_nodes([node.pk], dry_run=False)
    import_archive(archive)
    imported = orm.load_node(uuid)
    for use in (imported.get_module, imported.get_calculator, lambda: imported.write(tmp_path / 'x.model')):
        with pytest.raises(UnsafeModelError, match='holds no weights-only model file'):
            use()
    assert not marker.exists() and not (tmp_path / 'x.model').exists()


def test_mofal_md_refuses_a_hostile_model_file(mofal_codes, hostile_model, tmp_path):
    from aiida import orm
    from ase.io import write

    from aiida_mofal.cli import cmd_root

    path, marker = hostile_model
    write(tmp_path / 'water.xyz', molecule('H2O', vacuum=4.0))
    before = orm.QueryBuilder().append(orm.Node).count()
    result = CliRunner().invoke(cmd_root, ['md', str(tmp_path / 'water.xyz'), '--model', str(path), '--steps', '5'])
    assert result.exit_code != 0 and '--trust-model-file' in result.output, result.output
    assert 'Traceback' not in result.output
    assert not marker.exists() and orm.QueryBuilder().append(orm.Node).count() == before
