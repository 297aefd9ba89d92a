import pytest

from tests.mlp.mace_models import build_mace_model


@pytest.fixture(scope='session')
def uio66_mace_model_file(tmp_path_factory):
    """A random MACE model for H, C, N, O, Zr with 16x0e+16x1o hidden features (two layers)."""
    return build_mace_model(tmp_path_factory.mktemp('uio66-model') / 'uio66.model')
