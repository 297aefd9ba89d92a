"""Real MACE trainings on CPU on the CP2K GFN1-xTB data set (tiny protocol).

The training itself is the session's shared ``trained_tiny_model`` (tests/conftest.py): it is run once per test
run, and every test that needs a trained model reuses it.
"""

import numpy as np
import pytest
from aiida import engine

from aiida_mofal.workchains.train import TrainWorkChain

pytestmark = pytest.mark.engine


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_tiny_training_gives_a_model_that_learned(trained_tiny_model):
    node, train, validation = trained_tiny_model.workchain, trained_tiny_model.train, trained_tiny_model.validation
    assert node.is_finished_ok, node.exit_message
    model = trained_tiny_model.model
    assert model.elements == ['H', 'C', 'N', 'O']
    assert model.r_max == pytest.approx(4.5)
    assert model.base.attributes.get('dtype') == 'float32'
    assert model.base.attributes.get('hyperparameters')['E0s'] == train.isolated_atom_energies

    # predictions on the held-out validation frames, with the model file as stored in the node
    calculator = model.get_calculator()
    frames = validation.get_atoms()
    e0 = train.isolated_atom_energies
    predicted_f, reference_f, predicted_e, reference_e = [], [], [], []
    for atoms in frames:
        baseline = sum(e0[s] for s in atoms.get_chemical_symbols())
        reference_e.append((atoms.info['REF_energy'] - baseline) / len(atoms))
        reference_f.append(atoms.arrays['REF_forces'])
        atoms.calc = calculator
        predicted_e.append((atoms.get_potential_energy() - baseline) / len(atoms))
        predicted_f.append(atoms.get_forces())
    reference_f, predicted_f = np.concatenate(reference_f), np.concatenate(predicted_f)
    force_rmse = _rmse(predicted_f, reference_f)
    zero_force_rmse = _rmse(0.0, reference_f)
    energy_rmse = _rmse(predicted_e, reference_e)
    mean_energy_rmse = _rmse(np.mean(reference_e), reference_e)  # predicting the mean binding energy per atom
    print(
        f'validation: force RMSE {force_rmse:.3f} eV/Å (zero forces: {zero_force_rmse:.3f}); '
        f'energy RMSE {energy_rmse * 1000:.1f} meV/atom (E0 baseline: {_rmse(0.0, reference_e) * 1000:.1f}, '
        f'mean: {mean_energy_rmse * 1000:.1f})'
    )
    assert force_rmse < 0.6 * zero_force_rmse
    assert energy_rmse < 0.2 * _rmse(0.0, reference_e)  # far better than the E0 baseline alone

    # the parsed metrics agree with this independent evaluation (MACE reports meV)
    metrics = node.outputs.metrics.get_dict()
    print('metrics', metrics)
    assert metrics['valid']['rmse_f_meV_per_A'] / 1000 == pytest.approx(force_rmse, rel=0.05)
    assert metrics['epochs'] == 15
    assert metrics['cuequivariance_available'] is False
    curve = node.outputs.training_curve
    assert list(curve.get_array('epoch')) == list(range(-1, 15))
    assert curve.get_array('rmse_f')[-1] < curve.get_array('rmse_f')[0]
    assert 'compiled_model' in node.outputs
    assert 'mofal_run-5.log' in node.outputs.retrieved.base.repository.list_object_names()


def test_fine_tuning_from_the_trained_model(trained_tiny_model, python_code):
    node, train, validation = trained_tiny_model.workchain, trained_tiny_model.train, trained_tiny_model.validation
    parent = trained_tiny_model.model
    builder = TrainWorkChain.get_builder_from_protocol(
        python_code,
        train,
        validation,
        protocol='tiny',
        parent_model=parent,
        overrides={'hyperparameters': {'max_num_epochs': 3, 'start_swa': 2, 'lr': 0.001, 'num_channels': 32}},
        seed=6,
    )
    _, child = engine.run_get_node(builder)
    assert child.is_finished_ok, child.exit_message
    model = child.outputs.model
    # the parent's architecture wins over the protocol's (num_channels 32 was ignored) ...
    assert model.num_channels == parent.num_channels == 16
    assert model.base.attributes.get('hyperparameters')['parent_model'] == parent.uuid
    # ... and its weights are the starting point: the first validation error is the parent's final one
    start = child.outputs.training_curve.get_array('rmse_f')[0]
    parent_final = node.outputs.metrics['valid']['rmse_f_meV_per_A'] / 1000
    scratch_start = node.outputs.training_curve.get_array('rmse_f')[0]
    assert start == pytest.approx(parent_final, rel=0.1)
    assert start < 0.8 * scratch_start
    calc = child.called[-1]
    assert '--foundation_model=parent.model' in calc.base.repository.get_object_content('mace_args.json')
