"""The `mofal.mace_model` data plugin with a real MACE model."""

import numpy as np
import pytest
from ase.build import molecule

from aiida_mofal.data import MaceModelData


def test_model_node_records_facts_and_predicts(aiida_profile, tiny_mace_model_file):
    node = MaceModelData(tiny_mace_model_file, hyperparameters={'r_max': 4.5}, trusted=True).store()
    assert node.elements == ['H', 'O']
    assert node.r_max == pytest.approx(4.5)
    assert node.num_channels == 8
    assert node.base.attributes.get('num_interactions') == 2
    assert node.base.attributes.get('dtype') == 'float64'
    calculator = node.get_calculator()
    atoms = molecule('H2O')
    atoms.calc = calculator
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    assert np.isfinite(energy) and forces.shape == (3, 3)
    # locality: atoms farther apart than r_max do not interact, so the energy is a sum over single atoms
    atoms.positions *= 10
    singles = []
    for atom in atoms:
        single = atoms[[atom.index]]
        single.calc = calculator
        singles.append(single.get_potential_energy())
    assert atoms.get_potential_energy() == pytest.approx(sum(singles), abs=1e-9)
    assert atoms.get_potential_energy() != pytest.approx(energy, abs=1e-3)


def test_model_node_refuses_what_is_not_a_mace_model(tmp_path):
    import torch

    path = tmp_path / 'not-a-model.pt'
    torch.save({'weights': torch.zeros(3)}, path)
    with pytest.raises(ValueError, match='not a MACE model'):
        MaceModelData(path, trusted=True)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        MaceModelData(tmp_path / 'missing.model')
