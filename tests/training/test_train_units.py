"""Logic around the MACE training engine: protocols, argument building, input refusal, split, parsing.

The parser tests use files from real mace_run_train runs on this machine (tests/training/fixtures): a run
with lr=1e6 that really gave NaN (nan.log, nan_results.txt) and a normal tiny run (tiny.log,
tiny_results.txt). The divergence case is the real tiny curve with its last epoch's errors multiplied
by 20: a real divergence cannot be provoked reliably in seconds.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from aiida import engine, orm
from aiida.common import AttributeDict

from aiida_mofal.calculations.mace_train import (
    DIVERGENCE_RATIO,
    MaceTrainCalculation,
    check_training_inputs,
    mace_arguments,
    parse_error_tables,
    parse_training_curve,
    split_dataset,
    validate_hyperparameters,
)
from aiida_mofal.protocols import ProtocolError, available_protocols, load_protocol

FIXTURES = Path(__file__).parent / 'fixtures'


# -- protocols and hyperparameters -------------------------------------------------------------------------


def test_protocols_are_valid_and_tiny_is_the_ci_one():
    assert set(available_protocols('mace')) == {'tiny', 'small', 'medium'}
    for name in available_protocols('mace'):
        inputs = load_protocol('mace', name)
        validate_hyperparameters(inputs['hyperparameters'])
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


# -- data sets: E0 refusal and the split --------------------------------------------------------------------


def _without_e0(dataset, *symbols):
    from aiida_mofal.data import DatasetData

    energies = {k: v for k, v in dataset.isolated_atom_energies.items() if k not in symbols}
    return DatasetData(dataset.get_atoms(), level_of_theory=dataset.level_of_theory, isolated_atom_energies=energies)


def test_missing_e0_is_refused_before_submission(xtb_split, python_code):
    train, validation = xtb_split
    bad = _without_e0(train, 'N', 'O').store()
    with pytest.raises(ValueError, match=r'no isolated-atom energy \(E0\) for N, O.*isolated_atom_energies='):
        check_training_inputs(bad, validation)
    builder = MaceTrainCalculation.get_builder()
    builder.code = python_code
    builder.train = bad
    builder.validation = validation
    before = orm.QueryBuilder().append(orm.CalcJobNode).count()
    with pytest.raises(ValueError, match='no isolated-atom energy'):
        engine.run(builder)
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == before


def test_validation_set_must_not_bring_new_elements_or_another_theory(xtb_split):
    from aiida_mofal.data import DatasetData

    train, validation = xtb_split
    no_nitrogen = [a for a in train.get_atoms() if 'N' not in a.get_chemical_symbols()]
    small = DatasetData(no_nitrogen, level_of_theory=train.level_of_theory,
                        isolated_atom_energies=train.isolated_atom_energies)  # fmt: skip
    with pytest.raises(ValueError, match='contains N, which the training set lacks'):
        check_training_inputs(small, validation)
    other = DatasetData(validation.get_atoms(), level_of_theory={'method': 'PBE'},
                        isolated_atom_energies=train.isolated_atom_energies)  # fmt: skip
    with pytest.raises(ValueError, match='level of theory'):
        check_training_inputs(train, other)


def test_split_is_seeded_disjoint_and_recorded(xtb_dataset):
    first = split_dataset(xtb_dataset, orm.Float(0.2), orm.Int(7))
    again = split_dataset(xtb_dataset, orm.Float(0.2), orm.Int(7))
    other = split_dataset(xtb_dataset, orm.Float(0.2), orm.Int(8))
    assert first['train'].count + first['validation'].count == xtb_dataset.count
    assert first['validation'].count == round(0.2 * xtb_dataset.count)
    assert first['validation'].get_text() == again['validation'].get_text()
    assert first['validation'].get_text() != other['validation'].get_text()
    positions = {a.positions.tobytes() for a in first['train'].get_atoms()}
    assert not positions & {a.positions.tobytes() for a in first['validation'].get_atoms()}
    assert first['train'].isolated_atom_energies == xtb_dataset.isolated_atom_energies
    assert first['train'].creator.process_label == 'split_dataset'
    with pytest.raises(ValueError, match='between 0 and 1'):
        split_dataset(xtb_dataset, orm.Float(1.0), orm.Int(7))


# -- parsing real MACE output -------------------------------------------------------------------------------


def test_error_tables_from_a_real_log():
    tables = parse_error_tables((FIXTURES / 'tiny.log').read_text())
    assert [table['kind'] for table in tables] == ['train_valid', 'train_valid']  # stage one, stage two
    final = tables[-1]['rows']
    assert set(final) == {'train', 'valid'}
    assert set(final['valid']) == {'rmse_e_per_atom_meV', 'rmse_f_meV_per_A', 'rel_rmse_f_percent'}
    assert all(np.isfinite(v) and v > 0 for row in final.values() for v in row.values())


def test_training_curve_from_a_real_results_file():
    curve = parse_training_curve((FIXTURES / 'tiny_results.txt').read_text())
    assert curve['epoch'][0] == -1 and list(curve['epoch'][1:]) == list(range(len(curve['epoch']) - 1))
    assert {'loss', 'rmse_f', 'rmse_e_per_atom', 'train_seconds'} <= set(curve)
    assert curve['rmse_f'][-1] < curve['rmse_f'][0]
    assert np.all(curve['train_seconds'][1:] > 0)


class _FakeRetrieved:
    """The retrieved folder of a job: a dict of file names to text (only the repository API the parser uses)."""

    def __init__(self, files):
        self.base = AttributeDict({'repository': AttributeDict({'get_object_content': self.get})})
        self.files = files

    def get(self, name, mode='r'):
        if name not in self.files:
            raise FileNotFoundError(name)
        content = self.files[name]
        return content.encode() if mode == 'rb' else content


def _parse(files, seed=1):
    """Run the parser on retrieved files (model storage not reached in these cases); return (exit code, outputs)."""
    from aiida_mofal.calculations.mace_train import MaceTrainParser

    class Node:
        process_class = MaceTrainCalculation
        inputs = AttributeDict({'seed': orm.Int(seed), 'hyperparameters': orm.Dict({})})

    class Parser(MaceTrainParser):
        def __init__(self):
            self.collected = {}

        node = property(lambda self: Node())
        retrieved = property(lambda self: _FakeRetrieved(files))
        exit_codes = property(lambda self: MaceTrainCalculation.exit_codes)

        def out(self, name, value):
            self.collected[name] = value

    parser = Parser()
    return parser.parse(), parser.collected


STATUS_OK = json.dumps({'returncode': 0, 'timed_out': False, 'terminated_by_signal': None, 'elapsed_seconds': 9.0})


def test_parser_exit_code_for_a_real_nan_run():
    files = {
        'mofal_status.json': STATUS_OK,
        'mofal_run-1.log': (FIXTURES / 'nan.log').read_text(),
        'mofal_run-1_train.txt': (FIXTURES / 'nan_results.txt').read_text(),
    }
    exit_code, outputs = _parse(files)
    assert exit_code.status == MaceTrainCalculation.exit_codes.ERROR_NAN_LOSS.status
    assert 'epoch 0' in exit_code.message
    assert 'training_curve' in outputs and 'model' not in outputs


def test_parser_exit_code_for_divergence_and_walltime_and_crash():
    lines = (FIXTURES / 'tiny_results.txt').read_text().splitlines()
    last = json.loads(lines[-1])
    last['rmse_f'] *= 2 * DIVERGENCE_RATIO
    diverged = '\n'.join([*lines[:-1], json.dumps(last)])
    files = {'mofal_status.json': STATUS_OK, 'mofal_run-1_train.txt': diverged}
    exit_code, _ = _parse(files)
    assert exit_code.status == MaceTrainCalculation.exit_codes.ERROR_DIVERGENCE.status

    timed_out = json.dumps({'returncode': -15, 'timed_out': True, 'elapsed_seconds': 3420.0})
    exit_code, _ = _parse({'mofal_status.json': timed_out, 'mofal_run-1_train.txt': '\n'.join(lines[:4])})
    assert exit_code.status == MaceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status
    assert '3420 s' in exit_code.message

    crashed = json.dumps({'returncode': 1, 'timed_out': False})
    files = {'mofal_status.json': crashed, 'mace.err': 'Traceback ...\nKeyError: 7\n'}
    exit_code, _ = _parse(files)
    assert exit_code.status == MaceTrainCalculation.exit_codes.ERROR_MACE_FAILED.status
    assert 'KeyError: 7' in exit_code.message

    exit_code, _ = _parse({})
    assert exit_code.status == MaceTrainCalculation.exit_codes.ERROR_NO_STATUS.status
    exit_code, _ = _parse({'mofal_status.json': STATUS_OK, 'mofal_run-1_train.txt': '\n'.join(lines)})
    assert exit_code.status == MaceTrainCalculation.exit_codes.ERROR_MISSING_OUTPUT.status


def test_committee_builders_differ_only_in_the_seed(xtb_split, python_code):
    from aiida_mofal.workchains.train import get_committee_builders

    train, validation = xtb_split
    builders = get_committee_builders(python_code, train, 3, seed=40, validation=validation, protocol='small')
    assert [b.mace.seed.value for b in builders] == [40, 41, 42]
    assert len({b.mace.hyperparameters['num_channels'] for b in builders}) == 1
    assert all(b.mace.validation.uuid == validation.uuid for b in builders)
    with pytest.raises(ValueError, match='at least one member'):
        get_committee_builders(python_code, train, 0)


def test_builder_from_protocol_carries_gpu_options(xtb_split, python_code):
    train, validation = xtb_split
    from aiida_mofal.workchains.train import TrainWorkChain

    builder = TrainWorkChain.get_builder_from_protocol(
        python_code,
        train,
        validation,
        protocol='medium',
        overrides={'device': 'cuda'},
        options={'custom_scheduler_commands': '#SBATCH --gres=gpu:1'},
    )
    assert builder.mace.device.value == 'cuda'
    assert builder.mace.metadata.options['custom_scheduler_commands'] == '#SBATCH --gres=gpu:1'
    assert builder.mace.metadata.options['max_wallclock_seconds'] == 86400
    assert builder.mace.hyperparameters['max_L'] == 1


def test_batch_sizes_never_exceed_a_tiny_training_set():
    e0s = {'H': -10.0}
    argv = mace_arguments({'batch_size': 4, 'valid_batch_size': 8}, e0s=e0s, seed=1, dtype='float32', device='cpu',
                          num_train=3, num_valid=1)  # fmt: skip
    assert '--batch_size=3' in argv and '--valid_batch_size=1' in argv
    roomy = mace_arguments({'batch_size': 4}, e0s=e0s, seed=1, dtype='float32', device='cpu', num_train=50)
    assert '--batch_size=4' in roomy
