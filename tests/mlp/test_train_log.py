"""Reading what mace_run_train left (aiida_mofal.mlp.train_log) on stored real runs (tests/parsers/fixtures)."""

import json

import numpy as np
import pytest

from aiida_mofal.mlp.train_log import (
    DIVERGENCE_RATIO,
    diagnose,
    parse_error_tables,
    parse_training_curve,
    training_metrics,
)
from tests.conftest import PARSER_FIXTURES

FIXTURES = PARSER_FIXTURES / 'mace_train'


def _run(case):
    folder = FIXTURES / case
    seed = json.loads((folder / 'case.json').read_text())['seed']

    def read(name):
        path = folder / name
        return path.read_text() if path.is_file() else ''

    status = json.loads(read('mofal_status.json'))
    return (
        status,
        parse_training_curve(read(f'mofal_run-{seed}_train.txt')),
        read(f'mofal_run-{seed}.log'),
        read('mace.err'),
    )


def test_error_tables_of_a_real_log():
    _, _, log, _ = _run('normal')
    tables = parse_error_tables(log)
    assert [table['kind'] for table in tables] == ['train_valid', 'train_valid']  # stage one, stage two
    final = tables[-1]['rows']
    assert set(final) == {'train', 'valid'}
    assert set(final['valid']) == {'rmse_e_per_atom_meV', 'rmse_f_meV_per_A', 'rel_rmse_f_percent'}
    assert final['valid']['rmse_f_meV_per_A'] == 1318.7  # as printed in the stored log


def test_training_curve_of_a_real_results_file():
    _, curve, _, _ = _run('normal')
    assert curve['epoch'][0] == -1 and list(curve['epoch'][1:]) == list(range(len(curve['epoch']) - 1))
    assert {'loss', 'rmse_f', 'rmse_e_per_atom', 'train_seconds'} <= set(curve)
    assert curve['rmse_f'][-1] < curve['rmse_f'][0]
    assert np.all(curve['train_seconds'][1:] > 0)


@pytest.mark.parametrize(
    'case, kind',
    [('normal', 'ok'), ('nan', 'nan'), ('divergence', 'diverged'), ('walltime', 'walltime'), ('crash', 'failed')],
)
def test_diagnose_each_real_run(case, kind):
    outcome = diagnose(*_run(case))
    assert outcome.kind == kind
    if kind == 'diverged':
        assert outcome.details['ratio'] > DIVERGENCE_RATIO and np.isfinite(outcome.details['final'])
    if kind == 'failed':
        assert 'NoSuchMACE' in outcome.details['error']


def test_diagnose_without_status():
    assert diagnose(None, {}, '').kind == 'no_status'


def test_metrics_drop_nan_and_keep_units():
    status, curve, log, _ = _run('normal')
    metrics = training_metrics(log, curve, status)
    assert metrics['units'].startswith('meV/atom') and metrics['epochs'] == 15
    assert metrics['stage_one']['valid']['rmse_f_meV_per_A'] == 1307.3
    assert metrics['median_train_seconds_per_epoch'] > 0
