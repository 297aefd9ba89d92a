"""A real CP2K single point through aiida-cp2k's Cp2kCalculation on localhost, run and submitted."""

import importlib.util

import pytest
from aiida import engine

from tests.conftest import ROOT

pytestmark = pytest.mark.engine


def _example():
    spec = importlib.util.spec_from_file_location('cp2k_smoke', ROOT / 'examples' / 'cp2k_smoke.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(node):
    assert node.is_finished_ok, node.exit_message
    energy = node.outputs.output_parameters['energy']
    # GFN1-xTB total energy of water is about -5.77 Hartree; a wrong method or charge lands far away
    assert -6.5 < energy < -5.0
    output = node.outputs.retrieved.get_object_content('aiida.out')
    assert 'xTB' in output
    assert 'PROGRAM ENDED' in output
    assert 'Total number of message passing processes' in output
    return energy


def test_cp2k_runs_in_process(aiida_profile, mofal_codes):
    builder = _example().build(mofal_codes['cp2k'])
    _, node = engine.run_get_node(builder)
    _check(node)
    assert node.computer.label == 'localhost'


@pytest.mark.daemon
def test_cp2k_submitted_to_daemon_on_zeromq_profile(aiida_profile, mofal_codes, submit_and_await):
    assert aiida_profile.process_control_backend == 'core.zeromq'
    builder = _example().build(mofal_codes['cp2k'])
    node = submit_and_await(builder, timeout=300)
    energy = _check(node)
    # the same calculation in process and through the daemon gives the same energy
    _, again = engine.run_get_node(_example().build(mofal_codes['cp2k']))
    assert again.outputs.output_parameters['energy'] == pytest.approx(energy, abs=1e-8)
