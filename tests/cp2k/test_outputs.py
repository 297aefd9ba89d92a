"""Reading CP2K outputs (aiida_mofal.cp2k.outputs) on the stored real outputs of tests/parsers/fixtures/cp2k."""

import json

import numpy as np
import pytest
from ase import units

from aiida_mofal.cp2k.outputs import FORCE_HARTREE_BOHR_TO_EV_A, GPA_TO_EV_A3, HARTREE_TO_EV, parse_cp2k_output
from tests.conftest import PARSER_FIXTURES

FIXTURES = PARSER_FIXTURES / 'cp2k'


def _case(name):
    return parse_cp2k_output((FIXTURES / name / 'aiida.out').read_text()), json.loads(
        (FIXTURES / name / 'expected.json').read_text()
    )


def test_unit_conversions():
    assert HARTREE_TO_EV == pytest.approx(27.211386, rel=1e-6)
    assert FORCE_HARTREE_BOHR_TO_EV_A == pytest.approx(27.211386 / 0.52917721, rel=1e-6)
    assert GPA_TO_EV_A3 * 160.21766 == pytest.approx(1.0, rel=1e-6)  # 1 eV/Å³ = 160.2 GPa


def test_a_periodic_cell_with_its_stress():
    result, expected = _case('cell_stress')
    assert result.complete and result.scf_steps > 1 and result.version == 'CP2K version 2023.1'
    assert result.energy_ev == pytest.approx(result.energy_hartree * units.Hartree)
    assert result.forces_ev_a.shape == (5, 3)
    assert np.allclose(result.forces_ev_a.sum(axis=0), 0.0, atol=1e-3)  # Newton's third law survives the parse
    assert result.stress_kind == 'analytical' and np.allclose(result.stress_ev_a3, result.stress_ev_a3.T)
    assert -np.trace(result.stress_ev_a3) / 3 / units.GPa == pytest.approx(expected['pressure_gpa'], rel=1e-5)


def test_a_cluster_has_no_stress():
    result, expected = _case('cluster')
    assert result.complete and result.stress_gpa is None
    assert result.forces_ev_a.shape == (expected['natoms'], 3)


@pytest.mark.parametrize(
    'case, flag',
    [('scf_not_converged', 'scf_not_converged'), ('walltime', 'walltime_exceeded'), ('abort', 'aborted')],
)
def test_failed_runs_are_not_complete(case, flag):
    result, _ = _case(case)
    assert getattr(result, flag) and not result.complete
    assert result.messages  # what CP2K said, for the exit message


def test_a_walltime_stop_ends_normally_but_unconverged():
    result, _ = _case('walltime')
    assert result.ended and result.walltime_exceeded and result.scf_not_converged
    assert any('exceeded requested execution time' in message for message in result.messages)
