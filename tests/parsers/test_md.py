"""The ``mofal.md`` parser on stored real runs of the driver (MACE on Cu; make_fixtures.py), against expectations."""

import json
import shutil

import numpy as np
import pytest
from aiida import orm

from aiida_mofal.calculations.md import MdCalculation
from aiida_mofal.calculations.parsers.md import MdParser

from .md_nodes import calc_job_node, fixture

CASES = ['md/ase_finished', 'md/lammps_python_walks', 'md/walltime', 'md/blowup', 'md/lost_atoms', 'md/nan']


def parse(computer, case):
    node, directory = calc_job_node(computer, case)
    outputs, calcfunction = MdParser.parse_from_node(node, store_provenance=False,
                                                     retrieved_temporary_folder=str(directory))  # fmt: skip
    if isinstance(outputs, orm.Dict):  # a parse with one output returns it alone (its label is `result`)
        outputs = {'result': outputs}
    return outputs, calcfunction


def parse_checked(computer, case):
    """Parse a case and check the job's exit code against the case's expectation; return outputs and the case."""
    _, inputs, expected = fixture(case)
    outputs, calcfunction = parse(computer, case)
    status = 0 if expected['exit_code'] is None else MdCalculation.exit_codes[expected['exit_code']].status
    assert calcfunction.exit_status == status, calcfunction.exit_message
    return outputs, inputs, expected


def walk_outputs(outputs, walk):
    return outputs if walk['name'] is None else outputs['walks'][walk['name']]


@pytest.mark.parametrize('case', CASES)
def test_parser_gives_each_walk_its_nodes_and_the_exit_code(aiida_localhost, case):
    outputs, inputs, expected = parse_checked(aiida_localhost, case)
    result = outputs['result'].get_dict()
    for walk, wanted in zip(inputs['walks'], expected['walks']):
        reported = next(entry for entry in result['walks'] if entry['index'] == wanted['index'])
        assert reported['status'] == wanted['status'] and reported['completed_steps'] == wanted['completed_steps']
        nodes = walk_outputs(outputs, walk)
        if not wanted['num_frames']:
            assert 'trajectory' not in nodes  # a walk that never started has nothing to show
            continue
        trajectory = nodes['trajectory']
        attributes = trajectory.base.attributes
        assert trajectory.num_frames == wanted['num_frames'] and trajectory.engine == inputs['engine']
        assert trajectory.get_array('steps').tolist() == wanted['steps']
        assert attributes.get('walk') == wanted['index'] and attributes.get('seed') == walk['settings']['seed']
        assert attributes.get('status') == wanted['status']
        assert attributes.get('completed_steps') == wanted['completed_steps']
        assert np.mean(trajectory.get_thermo()['temperature']) == pytest.approx(wanted['mean_temperature'])
        assert np.allclose(nodes['structure'].get_ase().positions, trajectory.get_array('positions')[-1])
        assert nodes['integrity']['steps'] == wanted['steps'] and 'restart' in nodes


def test_two_walks_land_in_their_own_namespaces(aiida_localhost):
    outputs, _ = parse(aiida_localhost, 'md/lammps_python_walks')
    first, second = (outputs['walks'][name]['trajectory'] for name in ('walk_0', 'walk_1'))
    assert first.base.attributes.get('pressure') == [1.0, 1.0] and second.base.attributes.get('pressure') is None
    assert first.base.attributes.get('ensemble') == 'npt' and second.base.attributes.get('ensemble') == 'nvt'
    assert 'trajectory' not in outputs  # one walk per namespace, nothing at the top level


def test_walltime_keeps_the_last_good_state(aiida_localhost):
    outputs, calcfunction = parse(aiida_localhost, 'md/walltime')
    walk = outputs['walks']['walk_0']
    done = walk['trajectory'].base.attributes.get('completed_steps')
    with walk['restart'].open(mode='rb') as handle, np.load(handle) as restart:
        assert int(restart['step']) == done and restart['velocities'].shape == (32, 3)
    assert 0 < done < 100000 and calcfunction.exit_message.endswith(f'step {done} of 100000.')


def test_a_recorded_error_or_no_result_is_a_failed_job_that_says_why(aiida_localhost, tmp_path):
    """A traceback in ``md_result.json`` gives 301 with its last line; no ``md_result.json``, 300 with ``md.err``'s."""
    source, _, _ = fixture('md/ase_finished')
    failed, missing = tmp_path / 'failed', tmp_path / 'missing'
    for case in (failed, missing):
        shutil.copytree(source, case)
    result = json.loads((failed / 'md_result.json').read_text())
    result.update(status='error', message='Traceback (most recent call last):\n  ...\nValueError: unknown engine\n')
    (failed / 'md_result.json').write_text(json.dumps(result))
    (missing / 'md_result.json').unlink()
    (missing / 'md.err').write_text('Segmentation fault\n\n')
    _, calcfunction = parse(aiida_localhost, str(failed))
    assert calcfunction.exit_status == MdCalculation.exit_codes.ERROR_SCRIPT_FAILED.status
    assert calcfunction.exit_message == 'the MD script failed: ValueError: unknown engine'
    _, calcfunction = parse(aiida_localhost, str(missing))
    assert calcfunction.exit_status == MdCalculation.exit_codes.ERROR_NO_RESULT.status
    assert calcfunction.exit_message == 'the MD script wrote no md_result.json: Segmentation fault'
