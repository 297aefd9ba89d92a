"""Each handler of ``Cp2kBaseWorkChain`` against a fake failed ``Cp2kCalculation`` (no CP2K runs here)."""

import pytest
from aiida import orm
from aiida.engine import ProcessHandlerReport
from aiida.plugins import CalculationFactory
from ase.build import molecule

from aiida_mofal.cp2k.inputs import RESTART_WFN, build_cp2k_parameters
from aiida_mofal.protocols import load_protocol
from aiida_mofal.workchains.cp2k_base import Cp2kBaseWorkChain
from tests.conftest import PARSER_FIXTURES

Cp2kCalculation = CalculationFactory('cp2k')
FREE_FORM = ('cp2k', 'basis_set', 'calculation.options')


def _water(charge=0):
    atoms = molecule('H2O')
    atoms.info.update(config_type='cluster', charge=charge, multiplicity=1 if charge % 2 == 0 else 2)
    atoms.pbc = False
    return atoms


@pytest.fixture
def cp2k_inputs(mofal_codes):
    """Return the inputs of a Cp2kBaseWorkChain for water with protocol ``protocol`` (xtb or a DFT one)."""

    def _inputs(protocol='xtb', charge=0, max_scf=None):
        atoms = _water(charge)
        settings = load_protocol('label', protocol, free_form=FREE_FORM)
        parameters = build_cp2k_parameters(atoms, settings)
        if max_scf is not None:
            parameters['FORCE_EVAL']['DFT']['SCF']['MAX_SCF'] = max_scf
        return {
            'cp2k': {
                'code': mofal_codes['cp2k'],
                'structure': orm.StructureData(ase=atoms),
                'parameters': orm.Dict(parameters),
                'metadata': {'options': {'resources': {'num_machines': 1}, 'max_wallclock_seconds': 600}},
            }
        }

    return _inputs


@pytest.fixture
def failed_cp2k(generate_calc_job_node):
    def _failed(exit_code, retrieved=None):
        return generate_calc_job_node('cp2k', exit_status=exit_code, retrieved=retrieved)

    return _failed


def _scf(process):
    return process.ctx.inputs.parameters['FORCE_EVAL']['DFT']['SCF']


def test_setup_uses_the_mofal_parser(generate_workchain, cp2k_inputs):
    process = generate_workchain(Cp2kBaseWorkChain, cp2k_inputs())
    assert process.ctx.inputs.metadata['options']['parser_name'] == 'mofal.cp2k'
    assert process.ctx.scf_failures == 0 and process.ctx.crashes == 0


def test_handle_scf_not_converged_escalates_then_gives_up(generate_workchain, cp2k_inputs, failed_cp2k):
    child = failed_cp2k(Cp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED)
    process = generate_workchain(Cp2kBaseWorkChain, cp2k_inputs('xtb', max_scf=30), child)
    original = process.ctx.inputs.parameters

    result = process.handle_scf_not_converged(child)  # 1: more steps from the wavefunction
    assert isinstance(result, ProcessHandlerReport) and result.do_break and result.exit_code.status == 0
    assert _scf(process)['MAX_SCF'] == 120 and _scf(process)['SCF_GUESS'] == 'RESTART'
    assert process.ctx.inputs.parameters['FORCE_EVAL']['DFT']['WFN_RESTART_FILE_NAME'] == RESTART_WFN
    assert process.ctx.inputs.parent_calc_folder.uuid == child.outputs.remote_folder.uuid
    assert original['FORCE_EVAL']['DFT']['SCF']['MAX_SCF'] == 30  # the old input Dict is not changed

    result = process.handle_scf_not_converged(child)  # 2: xTB's robust SCF is the orbital transformation
    assert result.exit_code.status == 0
    scf = _scf(process)
    assert scf['OT']['MINIMIZER'] == 'CG' and scf['MAX_SCF'] == 200 and scf['SCF_GUESS'] == 'RESTART'
    assert scf['EPS_SCF'] == original['FORCE_EVAL']['DFT']['SCF']['EPS_SCF']

    result = process.handle_scf_not_converged(child)  # 3: give up
    assert result.exit_code == Cp2kBaseWorkChain.exit_codes.ERROR_SCF_UNRECOVERABLE


def test_handle_scf_not_converged_dft_smears_with_added_orbitals(generate_workchain, cp2k_inputs, failed_cp2k):
    child = failed_cp2k(Cp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED)
    process = generate_workchain(Cp2kBaseWorkChain, cp2k_inputs('fast', charge=1), child)
    process.handle_scf_not_converged(child)
    process.handle_scf_not_converged(child)
    scf = _scf(process)
    assert scf['SMEAR']['METHOD'] == 'FERMI_DIRAC' and scf['DIAGONALIZATION']['_'] == 'ON' and 'OT' not in scf
    assert scf['ADDED_MOS'] == 10  # max(10, 9 electrons // 10): water has 10 electrons, the cation 9
    assert process.ctx.inputs.parameters['FORCE_EVAL']['DFT']['CHARGE'] == 1


def test_handle_out_of_walltime_restarts_from_the_wavefunction(generate_workchain, cp2k_inputs, failed_cp2k):
    child = failed_cp2k(Cp2kCalculation.exit_codes.ERROR_OUT_OF_WALLTIME)
    process = generate_workchain(Cp2kBaseWorkChain, cp2k_inputs('xtb', max_scf=30), child)
    result = process.handle_out_of_walltime(child)
    assert result.do_break and result.exit_code.status == 0
    assert _scf(process)['SCF_GUESS'] == 'RESTART' and _scf(process)['MAX_SCF'] == 30  # nothing else changes
    assert process.ctx.inputs.parent_calc_folder.uuid == child.outputs.remote_folder.uuid


def test_handle_no_output_retries_once_then_reports_the_last_lines(generate_workchain, cp2k_inputs, failed_cp2k):
    crashed = (PARSER_FIXTURES / 'cp2k' / 'abort' / 'aiida.out').read_text()
    child = failed_cp2k(Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE, retrieved={'aiida.out': crashed})
    process = generate_workchain(Cp2kBaseWorkChain, cp2k_inputs(), child)
    before = process.ctx.inputs.parameters.uuid
    result = process.handle_no_output(child)
    assert result.do_break and result.exit_code.status == 0
    assert process.ctx.inputs.parameters.uuid == before  # retried unchanged
    result = process.handle_no_output(child)
    assert result.exit_code.status == Cp2kBaseWorkChain.exit_codes.ERROR_CRASHED.status
    assert crashed.strip().splitlines()[-1].strip() in result.exit_code.message


@pytest.mark.parametrize(
    'exit_code, handler_state',
    [
        (Cp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED, ('scf_failures', 1)),
        (Cp2kCalculation.exit_codes.ERROR_OUTPUT_MISSING, ('crashes', 1)),
        (Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE, ('crashes', 1)),
    ],
)
def test_inspect_process_calls_the_handler_of_the_exit_code(
    generate_workchain, cp2k_inputs, failed_cp2k, exit_code, handler_state
):
    child = failed_cp2k(exit_code)
    process = generate_workchain(Cp2kBaseWorkChain, cp2k_inputs(), child)
    assert process.inspect_process().status == 0  # handled: run again
    assert process.ctx[handler_state[0]] == handler_state[1]


def test_cp2k_abort_reports_cp2ks_own_message(generate_workchain, cp2k_inputs, failed_cp2k):
    """Issue 18, class 10: a CPABORT/CPASSERT (304) stops at once with CP2K's message, not 'unhandled failure'."""
    aborted = (PARSER_FIXTURES / 'cp2k' / 'abort' / 'aiida.out').read_text()
    child = failed_cp2k(Cp2kCalculation.exit_codes.ERROR_OUTPUT_CONTAINS_ABORT, retrieved={'aiida.out': aborted})
    process = generate_workchain(Cp2kBaseWorkChain, cp2k_inputs(), child)
    result = process.inspect_process()  # an abort is not retried: the same input aborts the same way
    assert result.status == Cp2kBaseWorkChain.exit_codes.ERROR_CP2K_ABORTED.status
    assert 'The requested basis set <NO-SUCH-BASIS> for element <H> was not found' in result.message
    assert '(at aobasis/basis_set_types.F:1509)' in result.message and '[ABORT]' not in result.message


def test_inspect_process_refuses_an_unhandled_failure(generate_workchain, cp2k_inputs, failed_cp2k):
    child = failed_cp2k(Cp2kCalculation.exit_codes.ERROR_OUTPUT_PARSE)  # no handler knows how to fix this one
    process = generate_workchain(Cp2kBaseWorkChain, cp2k_inputs(), child)
    assert process.inspect_process() == Cp2kBaseWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE
