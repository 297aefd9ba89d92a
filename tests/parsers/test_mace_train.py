"""The ``mofal.mace.train`` parser on stored real training outputs (tests/parsers/fixtures/mace_train).

The stored ``normal`` case keeps no model file (1 MB); the test puts a real MACE model file (the session's random
tiny model) where MACE writes the stage-two model: the parser only stores those bytes as a ``mofal.mace_model``.
"""

import json

import pytest
from aiida import orm

from aiida_mofal.calculations.mace_train import MaceTrainCalculation
from aiida_mofal.calculations.parsers.mace_train import MaceTrainParser
from tests.conftest import PARSER_FIXTURES

FIXTURES = PARSER_FIXTURES / 'mace_train'
CASES = sorted(path.name for path in FIXTURES.iterdir() if (path / 'expected.json').is_file())
EXIT = MaceTrainCalculation.exit_codes

pytestmark = pytest.mark.filterwarnings('ignore::sqlalchemy.exc.SAWarning')


@pytest.fixture
def parse_case(generate_calc_job_node, xtb_split, tiny_mace_model_file):
    """Return a function: case name (or a dict of files) -> (expected, parsed outputs, parser calcfunction node)."""

    def _parse(case, files=None):
        folder = FIXTURES / case
        inputs_of_case = json.loads((folder / 'case.json').read_text())
        if files is None:
            files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name not in ('case.json', 'expected.json')}
            if inputs_of_case['exit_status'] == 0:
                files['mofal_stagetwo.model'] = tiny_mace_model_file.read_bytes()
        train, validation = xtb_split
        node = generate_calc_job_node(
            'mofal.mace.train',
            inputs={
                'train': train,
                'validation': validation,
                'seed': orm.Int(inputs_of_case['seed']),
                'dtype': orm.Str(inputs_of_case['dtype']),
                'hyperparameters': orm.Dict(inputs_of_case['hyperparameters']),
            },
            retrieved=files,
        )
        results, calcfunction = MaceTrainParser.parse_from_node(node, store_provenance=False)
        expected = json.loads((folder / 'expected.json').read_text()) if (folder / 'expected.json').is_file() else {}
        return expected, results, calcfunction

    return _parse


def test_every_case_is_stored():
    assert set(CASES) == {'crash', 'divergence', 'nan', 'normal', 'walltime'}


@pytest.mark.parametrize('case', CASES)
def test_exit_status_of_each_real_run(case, parse_case):
    expected, results, calcfunction = parse_case(case)
    assert calcfunction.exit_status == expected['exit_status'], calcfunction.exit_message
    if expected['exit_status']:
        assert 'model' not in results and 'metrics' not in results
    for fragment in expected.get('message_contains', []):
        assert fragment in calcfunction.exit_message


def test_a_normal_run_gives_model_metrics_and_curve(parse_case, xtb_split):
    expected, results, _ = parse_case('normal')
    metrics = results['metrics'].get_dict()
    for subset in ('train', 'valid'):
        assert metrics[subset] == pytest.approx(expected['metrics'][subset])
    assert (
        metrics['stage_one']['valid']['rmse_f_meV_per_A']
        == expected['metrics']['stage_one']['valid']['rmse_f_meV_per_A']
    )
    assert metrics['epochs'] == expected['metrics']['epochs']
    assert metrics['best_valid_rmse_f_eV_per_A'] == pytest.approx(
        expected['metrics']['best_valid_rmse_f_eV_per_A'], rel=1e-4
    )
    assert metrics['cuequivariance_available'] is False and 'not made' in metrics['mliap_export']
    epochs = results['training_curve'].get_array('epoch')
    assert [epochs[0], epochs[-1]] == expected['curve_epochs'] and len(epochs) == 16
    provenance = results['model'].base.attributes.get('hyperparameters')
    assert provenance['stage'] == 'stage_two' and provenance['seed'] == 5 and provenance['dtype'] == 'float32'
    assert provenance['E0s'] == xtb_split[0].isolated_atom_energies and provenance['parent_model'] is None


def test_a_nan_run_keeps_its_curve(parse_case):
    _, results, calcfunction = parse_case('nan')
    assert 'training_curve' in results
    assert 'epoch 0' in calcfunction.exit_message


def test_no_status_file_means_the_wrapper_did_not_run(parse_case):
    _, results, calcfunction = parse_case('normal', files={'mace.err': b'/bin/sh: python: not found\n'})
    assert calcfunction.exit_status == EXIT.ERROR_NO_STATUS.status and not results


def test_a_finished_run_without_its_model_file(parse_case):
    files = {p.name: p.read_bytes() for p in (FIXTURES / 'normal').iterdir() if p.name.startswith(('mofal', 'mace'))}
    _, _, calcfunction = parse_case('normal', files=files)
    assert calcfunction.exit_status == EXIT.ERROR_MISSING_OUTPUT.status
    assert 'mofal_stagetwo.model' in calcfunction.exit_message
