"""The ``mofal.cp2k.packed`` parser on real outputs of CP2K's FARMING (tests/parsers/fixtures/cp2k_farm/).

The numbers expected were read from CP2K's own printout by ``make_fixtures.py``, not with the parser under test.
"""

import json

import numpy as np
import pytest
from aiida import orm
from ase.io import read

from aiida_mofal.calculations.labels import label_rows
from aiida_mofal.calculations.parsers.cp2k_packed import Cp2kPackedParser
from aiida_mofal.data import DatasetData
from tests.conftest import PARSER_FIXTURES

FIXTURES = PARSER_FIXTURES / 'cp2k_farm'


def _parse(generate_calc_job_node, case: str):
    folder = FIXTURES / case
    frames = read(folder / 'structures.extxyz', index=':')
    retrieved = {path.name: path.read_text() for path in sorted(folder.glob('*.out'))}
    node = generate_calc_job_node(
        'mofal.cp2k.packed', inputs={'structures': DatasetData(frames), 'settings': orm.Dict({})}, retrieved=retrieved
    )
    results, calcfunction = Cp2kPackedParser.parse_from_node(node, store_provenance=False)
    return results, calcfunction, json.loads((folder / 'expected.json').read_text())


@pytest.mark.parametrize('case', ['farm', 'abort_input', 'abort_run'])
def test_each_structure_of_a_farm_is_a_label_or_a_named_failure(generate_calc_job_node, case):
    results, calcfunction, expected = _parse(generate_calc_job_node, case)
    assert calcfunction.exit_status == 0  # structure 0 was labelled in every case
    failed = results['failed'].get_dict() if 'failed' in results else {}
    labelled = label_rows(results['labels'])  # position in the job → its label, all in one node
    for index, want in expected['frames'].items():
        if 'reason_contains' in want:
            assert int(index) not in labelled and want['reason_contains'] in failed[index], failed
            continue
        label = labelled[int(index)]
        assert label['energy'] == pytest.approx(want['energy_ev'], abs=1e-8)
        np.testing.assert_allclose(label['forces'], want['forces_ev_per_a'], atol=1e-10)
    assert len(labelled) + len(failed) == len(expected['frames'])


def test_the_structure_that_aborted_the_farm_gets_cp2ks_own_message(generate_calc_job_node):
    results, _, _ = _parse(generate_calc_job_node, 'abort_input')
    failed = results['failed'].get_dict()
    assert failed['1'].startswith('CP2K aborted: ') and 'NO_SUCH_KEYWORD' in failed['1']  # banner was in farm.out
    assert 'input_parsing.F' in failed['1']  # where in CP2K
    results, _, _ = _parse(generate_calc_job_node, 'abort_run')
    failed = results['failed'].get_dict()
    assert 'NO-SUCH-BASIS' in failed['1']  # banner in the structure's own output
    assert failed['2'].startswith('no output (the CP2K farm ended before this structure ran; frame_0001: CP2K abort')


def test_a_farm_killed_before_any_structure_ended_is_no_label(generate_calc_job_node):
    folder = FIXTURES / 'farm'
    frames = read(folder / 'structures.extxyz', index=':')
    farm = (folder / 'farm.out').read_text().split('  Running Job 00001')[0]  # killed (scancel) before job 1 ended
    node = generate_calc_job_node(
        'mofal.cp2k.packed',
        inputs={'structures': DatasetData(frames), 'settings': orm.Dict({})},
        retrieved={'farm.out': farm, 'frame_0000.out': (folder / 'frame_0000.out').read_text()[:5000]},
    )
    results, calcfunction = Cp2kPackedParser.parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == 450
    failed = results['failed'].get_dict()
    assert failed['0'] == 'output incomplete (crashed or killed)'
    assert failed['2'] == 'no output (the CP2K farm ended before this structure ran; CP2K stopped or was killed)'
