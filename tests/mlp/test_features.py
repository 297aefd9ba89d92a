"""Last-layer features: shape, determinism, equality with MACE's own get_descriptors, batching, chunking."""

import warnings

import numpy as np
import pytest
from ase.build import molecule

from aiida_mofal.mlp.features import FeatureExtractor
from tests.mlp.mace_models import build_mace_model
from tests.structure_files import read_structure


def _slow_path_last_layer(model_file, atoms, num_channels):
    from mace.calculators import MACECalculator

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        calculator = MACECalculator(model_paths=str(model_file), device='cpu', default_dtype='float64')
        descriptors = calculator.get_descriptors(atoms, invariants_only=True, num_layers=-1)
    assert descriptors.shape[1] == 2 * num_channels  # all layers: two interactions here
    return descriptors[:, -num_channels:]


@pytest.fixture(scope='module')
def uio66():
    return read_structure('UiO-66-Zr_Trousselet2016.cif')


def test_features_shape_determinism_and_slow_path(uio66_mace_model_file, uio66):
    extractor = FeatureExtractor(uio66_mace_model_file)
    assert extractor.num_features == 16 and extractor.receptive_field == pytest.approx(10.0)
    features = extractor.features(uio66)
    assert features.shape == (len(uio66), 16) and features.dtype == np.float64
    assert np.all(np.isfinite(features))
    # deterministic: a second call and a second extractor give the very same numbers
    assert np.array_equal(features, extractor.features(uio66))
    assert np.array_equal(features, FeatureExtractor(uio66_mace_model_file).features(uio66))
    # equal to the last block of get_descriptors(num_layers=-1), the slow path with the force backward pass
    slow = _slow_path_last_layer(uio66_mace_model_file, uio66, 16)
    np.testing.assert_allclose(features, slow, rtol=0, atol=1e-10)
    # invariant: same environment -> same features (the 24 Zr of pristine UiO-66 are equivalent)
    zr = features[uio66.numbers == 40]
    assert np.ptp(zr, axis=0).max() < 1e-8
    # and geometry-sensitive: moving one atom changes the features of its neighbours
    moved = uio66.copy()
    moved.positions[0] += [0.2, 0.0, 0.0]
    assert np.abs(extractor.features(moved) - features).max() > 1e-4


def test_scalar_only_model_matches_slow_path(tiny_mace_model_file):
    """A model without equivariant channels (hidden 8x0e): the column bookkeeping still picks the last layer."""
    water = molecule('H2O')
    features = FeatureExtractor(tiny_mace_model_file).features(water)
    assert features.shape == (3, 8)
    np.testing.assert_allclose(features, _slow_path_last_layer(tiny_mace_model_file, water, 8), atol=1e-10)


def test_batching_gives_the_same_features(uio66_mace_model_file, uio66):
    reference = FeatureExtractor(uio66_mace_model_file)
    water = molecule('H2O')
    water.center(vacuum=4.0)
    small = uio66[:60]
    single = [reference.features(a) for a in (water, small, uio66)]
    # several structures in one graph batch, or one per batch: the same per-structure arrays
    for budget in (10_000, 50):
        batched = FeatureExtractor(uio66_mace_model_file, max_atoms_per_batch=budget).features_many(
            [water, small, uio66]
        )
        for one, many in zip(single, batched):
            np.testing.assert_allclose(many, one, atol=1e-10)


def test_halo_padded_chunks_equal_whole_structure_features(tmp_path, uio66):
    """Two layers with r_max 3 Å: a 6 Å halo must carry every atom that reaches a chunk atom in two hops."""
    short = build_mace_model(tmp_path / 'short.model', hidden_irreps='8x0e+8x1o', r_max=3.0)
    whole = FeatureExtractor(short).features(uio66)
    chunked = FeatureExtractor(short, max_atoms_per_chunk=100)
    assert chunked.receptive_field == pytest.approx(6.0)
    np.testing.assert_allclose(chunked.features(uio66), whole, atol=1e-10)
    # a halo of one hop only would be wrong: the second layer sees neighbours of neighbours
    one_hop = FeatureExtractor(short, max_atoms_per_chunk=100)
    one_hop.num_interactions = 1
    assert np.abs(one_hop.features(uio66) - whole).max() > 1e-6


def test_unknown_element_is_refused_with_its_name(uio66_mace_model_file):
    zinc = molecule('H2O')
    zinc.numbers[0] = 30
    with pytest.raises(ValueError, match='Zn, which the MACE model'):
        FeatureExtractor(uio66_mace_model_file).features_many([molecule('H2O'), zinc])
