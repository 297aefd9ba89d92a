"""The `mofal.density_model` node and its fit as a provenance step from (model, data set)."""

import mace  # noqa: F401  (before e3nn: tiny_mace_model_file in tests/conftest.py imports e3nn first)
import numpy as np
import pytest
from aiida import orm
from aiida.plugins import DataFactory

from aiida_mofal.calculations.density import fit_density_model
from aiida_mofal.data import DatasetData, MaceModelData
from aiida_mofal.data.density_model import DensityModelData
from aiida_mofal.uncertainty.gmm import DensityModel
from tests.mlp.mace_models import build_mace_model


@pytest.fixture
def uio66_nodes(aiida_profile, uio66_model_path, pristine_frames):
    model = MaceModelData(uio66_model_path, trusted=True).store()
    dataset = DatasetData(pristine_frames[:2]).store()
    return model, dataset


def test_fit_records_provenance_attributes_and_scores_atoms(uio66_nodes, pristine_frames):
    model, dataset = uio66_nodes
    settings = orm.Dict({'max_components': 3, 'pca_components': 8, 'seed': 1})
    node = fit_density_model(model, dataset, settings)
    assert DataFactory('mofal.density_model') is DensityModelData
    assert node.is_stored and node.elements == ['C', 'H', 'O', 'Zr']
    attributes = node.base.attributes.all
    assert attributes['feature_size'] == 16 and attributes['pca_components'] == 8
    assert attributes['training_atoms'] == {'C': 384, 'H': 224, 'O': 256, 'Zr': 48}
    assert all(1 <= m <= 3 for m in attributes['n_components'].values())
    # 48 Zr atoms carry at most a 5-D full Gaussian at two atoms per parameter (5 x 8 / 2 = 20 parameters)
    assert attributes['dimensions'] == {'C': 8, 'H': 8, 'O': 8, 'Zr': 5}
    assert set(attributes['bic']['C']) == {'1', '2', '3'}
    assert attributes['calibration']['Zr']['held_out_atoms'] == 10 and attributes['calibrated'] in (True, False)
    assert attributes['model_uuid'] == model.uuid and attributes['model_sha256'] == model.base.attributes.get('sha256')
    creator = node.creator
    assert creator.process_type.endswith('fit_density_model')
    assert {link.link_label for link in creator.base.links.get_incoming().all()} == {'model', 'dataset', 'settings'}

    # the stored file gives back the science object, and scoring goes through the recorded model
    density = orm.load_node(node.pk).get_density_model()
    assert isinstance(density, DensityModel) and density.thresholds == pytest.approx(node.thresholds)
    held_out = pristine_frames[2]
    (result,) = node.score(held_out)
    assert result['features'].shape == (456, 16)
    assert np.all(np.isfinite(result['uncertainty']))
    assert result['unknown'].mean() < 0.1  # a third thermal snapshot of the same crystal is familiar
    assert DensityModelData.summary_of([result])['atoms'] == 456


def test_density_model_refuses_a_different_model_and_bad_settings(uio66_nodes, tmp_path):
    model, dataset = uio66_nodes
    node = fit_density_model(model, dataset, orm.Dict({'max_components': 1}))
    other = MaceModelData(build_mace_model(tmp_path / 'other.model', seed=5), trusted=True).store()
    with pytest.raises(ValueError, match='not comparable'):
        node.score(dataset.get_atoms()[:1], other)
    with pytest.raises(ValueError, match=r"unknown density-model settings \['components'\]"):
        fit_density_model(model, dataset, orm.Dict({'components': 3}))


def test_density_fit_command_prints_bic_curves_and_the_calibration(uio66_nodes):
    from click.testing import CliRunner

    from aiida_mofal.cli import cmd_root

    model, dataset = uio66_nodes
    result = CliRunner().invoke(cmd_root, ['density', 'fit', str(model.pk), str(dataset.pk), '--max-components', '2'])
    assert result.exit_code == 0, result.output
    assert 'Zr  5-D' in result.output and result.output.count('BIC 1:') == 4
    assert 'held-out flagged' in result.output and 'by atom' in result.output  # two frames: atoms held out
