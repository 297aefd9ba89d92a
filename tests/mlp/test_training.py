"""What a MACE training job is given (aiida_mofal.mlp.training): protocols, hyperparameters, E0s, arguments."""

from types import SimpleNamespace

import pytest

from aiida_mofal.mlp.training import check_training_inputs, mace_arguments, validate_hyperparameters
from aiida_mofal.protocols import ProtocolError, available_protocols, load_protocol

LOT = {'code': 'CP2K', 'method': 'GFN1-xTB'}
E0S = {'H': -10.9, 'C': -47.3, 'N': -78.8, 'O': -118.3}


def _set(elements, labels=('energy', 'forces'), e0s=E0S, level_of_theory=LOT, pk=7):
    """The attributes of a mofal.dataset that check_training_inputs reads."""
    return SimpleNamespace(pk=pk, elements=list(elements), labels=list(labels), level_of_theory=level_of_theory,
                           isolated_atom_energies=e0s)  # fmt: skip


def test_protocols_are_valid_and_tiny_is_the_ci_one():
    assert set(available_protocols('mace')) == {'tiny', 'small', 'medium'}
    for name in available_protocols('mace'):
        validate_hyperparameters(load_protocol('mace', name)['hyperparameters'])
    tiny = load_protocol('mace', 'tiny')
    assert tiny['dtype'] == 'float32'
    assert tiny['hyperparameters']['max_L'] == 0
    assert tiny['hyperparameters']['num_channels'] == 16
    assert tiny['hyperparameters']['r_max'] == 4.5
    assert load_protocol('mace', 'medium')['hyperparameters']['max_L'] == 1


def test_unknown_override_is_an_error_with_a_hint():
    with pytest.raises(ProtocolError, match="'hyperparameters.swa_lrate'.*Did you mean 'swa_lr'"):
        load_protocol('mace', 'tiny', {'hyperparameters': {'swa_lrate': 0.1}})
    overrides = {'hyperparameters': {'lr': 0.005}}
    assert load_protocol('mace', 'tiny', overrides)['hyperparameters']['lr'] == 0.005
    assert overrides == {'hyperparameters': {'lr': 0.005}}  # not mutated


@pytest.mark.parametrize(
    'hyperparameters, message',
    [
        ({'E0s': 'average'}, "'E0s' is set by the job from the training set's isolated_atom_energies"),
        ({'seed': 3}, 'the `seed` input'),
        ({'num_channel': 8}, "Did you mean 'num_channels'"),
        ({'num_channels': '16'}, "'num_channels' must be a int"),
        ({'swa': 1}, "'swa' must be a bool"),
        ({'max_num_epochs': 10, 'start_swa': 10}, 'start_swa \\(10\\) must be smaller than max_num_epochs'),
    ],
)
def test_bad_hyperparameters_are_refused(hyperparameters, message):
    with pytest.raises(ValueError, match=message):
        validate_hyperparameters(hyperparameters)


def test_integer_for_a_float_hyperparameter_is_accepted():
    assert validate_hyperparameters({'lr': 1}) == {'lr': 1.0}


def test_mace_arguments_use_the_given_e0s_and_flags():
    e0s = {'H': -10.9, 'O': -118.3}
    argv = mace_arguments({'lr': 0.002, 'swa': False}, e0s=e0s, seed=4, dtype='float32', device='cuda')
    joined = ' '.join(argv)
    assert '--E0s={1: -10.9, 8: -118.3}' in argv
    assert 'average' not in joined
    assert '--lr=0.002' in argv and '--seed=4' in argv and '--device=cuda' in argv
    assert '--swa' not in argv and '--ema' in argv  # store_true flags only when true
    assert '--loss=weighted' in argv and '--foundation_model' not in joined and '--restart_latest' not in argv
    tuned = mace_arguments({}, e0s=e0s, seed=4, dtype='float64', device='cpu', fine_tune=True, restart=True,
                           has_stress=True, has_test=True)  # fmt: skip
    assert '--foundation_model=parent.model' in tuned and '--multiheads_finetuning=False' in tuned
    assert '--restart_latest' in tuned and '--compute_stress=True' in tuned and '--loss=stress' in tuned
    assert '--test_file=test.xyz' in tuned


def test_batch_sizes_never_exceed_a_tiny_training_set():
    e0s = {'H': -10.0}
    argv = mace_arguments({'batch_size': 4, 'valid_batch_size': 8}, e0s=e0s, seed=1, dtype='float32', device='cpu',
                          num_train=3, num_valid=1)  # fmt: skip
    assert '--batch_size=3' in argv and '--valid_batch_size=1' in argv
    roomy = mace_arguments({'batch_size': 4}, e0s=e0s, seed=1, dtype='float32', device='cpu', num_train=50)
    assert '--batch_size=4' in roomy


def test_e0s_come_from_the_training_set():
    assert check_training_inputs(_set('HCO'), _set('HO')) == {'H': -10.9, 'C': -47.3, 'O': -118.3}


def test_missing_e0_is_refused_naming_the_elements_and_the_fix():
    lacking = _set('HCNO', e0s={'H': -10.9, 'C': -47.3})
    with pytest.raises(ValueError, match=r'no isolated-atom energy \(E0\) for N, O.*isolated_atom_energies='):
        check_training_inputs(lacking, _set('HO'))


def test_validation_set_must_not_bring_new_elements_or_another_theory_or_lack_labels():
    with pytest.raises(ValueError, match='contains N, which the training set lacks'):
        check_training_inputs(_set('HCO'), _set('HNO'))
    with pytest.raises(ValueError, match='level of theory'):
        check_training_inputs(_set('HCO'), _set('HO', level_of_theory={'method': 'PBE'}))
    with pytest.raises(ValueError, match='the test data set .* has no forces labels; label it first'):
        check_training_inputs(_set('HCO'), _set('HO'), _set('HO', labels=['energy']))
