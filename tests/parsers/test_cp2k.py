"""The ``mofal.cp2k`` parser on stored real CP2K outputs (tests/parsers/fixtures/cp2k, made by make_fixtures.py)."""

import json

import numpy as np
import pytest
from aiida import orm
from ase.io import read

from aiida_mofal.calculations.parsers.cp2k import Cp2kLabelParser
from tests.conftest import PARSER_FIXTURES

FIXTURES = PARSER_FIXTURES / 'cp2k'
CASES = sorted(path.name for path in FIXTURES.iterdir() if (path / 'expected.json').is_file())


def _parse(case, generate_calc_job_node):
    folder = FIXTURES / case
    structure = orm.StructureData(ase=read(folder / 'structure.extxyz'))
    node = generate_calc_job_node(
        'cp2k',
        inputs={'structure': structure, 'parameters': orm.Dict({})},
        retrieved={'aiida.out': (folder / 'aiida.out').read_text()},
        options={'output_filename': 'aiida.out'},
    )
    results, calcfunction = Cp2kLabelParser.parse_from_node(node, store_provenance=False)
    return json.loads((folder / 'expected.json').read_text()), results, calcfunction


def test_every_case_is_stored():
    assert set(CASES) == {'abort', 'cell_stress', 'cluster', 'scf_not_converged', 'walltime'}


@pytest.mark.parametrize('case', CASES)
def test_exit_status_and_parameters(case, generate_calc_job_node):
    expected, results, calcfunction = _parse(case, generate_calc_job_node)
    assert calcfunction.exit_status == expected['exit_status'], calcfunction.exit_message
    parameters = results['output_parameters'].get_dict()
    assert parameters['scf_converged'] is expected['scf_converged']
    assert parameters['walltime_exceeded'] is expected['walltime_exceeded']
    assert parameters['energy'] == (pytest.approx(expected['energy_hartree']) if expected['energy_hartree'] else None)
    assert parameters['cp2k_version'] == 'CP2K version 2023.1'
    if expected['exit_status'] != 0:
        assert 'labels' not in results  # a label only from a run that really converged


@pytest.mark.parametrize('case', ['cluster', 'cell_stress'])
def test_labels_in_dataset_units(case, generate_calc_job_node):
    expected, results, _ = _parse(case, generate_calc_job_node)
    labels = results['labels']
    assert labels.get_array('energy') == pytest.approx([expected['energy_ev']], rel=1e-12)
    forces = labels.get_array('forces')
    assert forces.shape == (expected['natoms'], 3)
    np.testing.assert_allclose(forces, expected['forces_ev_per_a'], rtol=1e-10)
    assert np.allclose(forces.sum(axis=0), 0.0, atol=1e-3)  # Newton's third law survives the unit conversion
    if not expected['periodic']:
        assert 'stress' not in labels.get_arraynames()
        return
    stress = labels.get_array('stress')
    np.testing.assert_allclose(stress, expected['stress_ev_per_a3'], rtol=1e-10)
    assert np.allclose(stress, stress.T)
    from ase import units

    assert -np.trace(stress) / 3 / units.GPa == pytest.approx(expected['pressure_gpa'], rel=1e-5)  # P = -tr(σ)/3


def test_abort_message_is_kept(generate_calc_job_node):
    _, results, calcfunction = _parse('abort', generate_calc_job_node)
    messages = ' '.join(results['output_parameters']['messages'])
    assert 'NO-SUCH-BASIS' in messages
    assert calcfunction.exit_status == 304


def test_missing_output_file(generate_calc_job_node):
    structure = orm.StructureData(ase=read(FIXTURES / 'cluster' / 'structure.extxyz'))
    node = generate_calc_job_node(
        'cp2k', inputs={'structure': structure}, retrieved={}, options={'output_filename': 'aiida.out'}
    )
    _, calcfunction = Cp2kLabelParser.parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == 210


@pytest.mark.parametrize('retrieved', [{}, {'aiida.out': ' CP2K| version string:  CP2K version 2023.1\n'}])
def test_a_scheduler_walltime_stop_is_kept_over_missing_or_incomplete_output(generate_calc_job_node, retrieved):
    """SLURM killed the job at its time limit (exit 120 set by core.slurm before the parser runs): keep 120."""
    structure = orm.StructureData(ase=read(FIXTURES / 'cluster' / 'structure.extxyz'))
    node = generate_calc_job_node(
        'cp2k', inputs={'structure': structure}, retrieved=retrieved, options={'output_filename': 'aiida.out'}
    )
    node.set_exit_status(120)  # what CalcJob.parse does with the scheduler's verdict, before the output parser
    _, calcfunction = Cp2kLabelParser.parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == 120
