import numpy as np
import pytest

from tests.structure_files import read_structure


@pytest.fixture(scope='session')
def uio66_model_path(uio66_mace_model_file):
    """A random MACE model for H, C, N, O, Zr (N: known to the model, absent from the training set)."""
    return uio66_mace_model_file


@pytest.fixture(scope='session')
def extractor(uio66_model_path):
    from aiida_mofal.mlp.features import FeatureExtractor

    return FeatureExtractor(uio66_model_path)


@pytest.fixture(scope='session')
def pristine_frames():
    """Three thermally rattled copies of pristine UiO-66(Zr): the 'training set' (1,368 atoms)."""
    from ase import Atoms

    cif = read_structure('UiO-66-Zr_Trousselet2016.cif')
    pristine = Atoms(numbers=cif.numbers, positions=cif.positions, cell=cif.cell, pbc=True)  # no CIF metadata
    frames = []
    for seed in range(3):
        atoms = pristine.copy()
        atoms.rattle(0.04, seed=seed)
        frames.append(atoms)
    return frames


@pytest.fixture(scope='session')
def training_features(extractor, pristine_frames):
    features = np.concatenate(extractor.features_many(pristine_frames))
    symbols = np.array([s for atoms in pristine_frames for s in atoms.get_chemical_symbols()])
    return features, symbols


@pytest.fixture(scope='session')
def uio66_density(training_features):
    from aiida_mofal.uncertainty.gmm import DensityModel

    features, symbols = training_features
    return DensityModel.fit(features, symbols, max_components=4, seed=0)
