"""The input changes of the CP2K handlers (aiida_mofal.cp2k.recovery): copies, never the input itself."""

import copy

from ase.build import molecule

from aiida_mofal.cp2k.inputs import RESTART_WFN, build_cp2k_parameters
from aiida_mofal.cp2k.recovery import electron_count, with_more_scf_steps, with_robust_scf, with_wavefunction_restart
from aiida_mofal.protocols import load_protocol

FREE_FORM = ('cp2k', 'basis_set', 'calculation.options')


def _parameters(protocol):
    atoms = molecule('CH4')
    atoms.info.update(config_type='cluster', charge=0, multiplicity=1)
    return build_cp2k_parameters(atoms, load_protocol('label', protocol, free_form=FREE_FORM)), atoms


def test_electron_count():
    assert electron_count([8, 1, 1]) == 10 and electron_count([8, 1, 1], charge=-1) == 11


def test_more_steps_and_the_wavefunction_restart_do_not_touch_the_input():
    parameters, _ = _parameters('xtb')
    before = copy.deepcopy(parameters)
    more, old, new = with_more_scf_steps(parameters)
    assert (old, new) == (before['FORCE_EVAL']['DFT']['SCF']['MAX_SCF'], max(4 * old, 100))
    assert more['FORCE_EVAL']['DFT']['SCF']['MAX_SCF'] == new
    restarted = with_wavefunction_restart(more)
    assert restarted['FORCE_EVAL']['DFT']['SCF']['SCF_GUESS'] == 'RESTART'
    assert restarted['FORCE_EVAL']['DFT']['WFN_RESTART_FILE_NAME'] == RESTART_WFN
    assert parameters == before and more['FORCE_EVAL']['DFT']['SCF']['SCF_GUESS'] != 'RESTART'


def test_robust_scf_follows_the_method():
    xtb, atoms = _parameters('xtb')
    robust = with_robust_scf(xtb, atoms.numbers)['FORCE_EVAL']['DFT']['SCF']
    assert robust['OT']['MINIMIZER'] == 'CG' and 'SMEAR' not in robust
    dft, atoms = _parameters('fast')
    robust = with_robust_scf(dft, atoms.numbers)['FORCE_EVAL']['DFT']['SCF']
    assert robust['SMEAR']['METHOD'] == 'FERMI_DIRAC' and robust['MIXING']['METHOD'] == 'BROYDEN_MIXING'
    assert robust['EPS_SCF'] == dft['FORCE_EVAL']['DFT']['SCF']['EPS_SCF'] and robust['ADDED_MOS'] == 10
