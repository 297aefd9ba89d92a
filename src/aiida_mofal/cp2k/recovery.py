"""How to change a CP2K input after a failure CP2K really has (the fixes of ``mofal.cp2k.base``'s handlers).

Pure functions of the input dictionary: each returns a changed copy and never touches its argument, so the work
chain stores the result as a new ``Dict`` and the old input stays as it was in the provenance graph.

The SCF escalation: more steps from the last wavefunction first (most SCF failures are a slow but steady
convergence), then :func:`~aiida_mofal.cp2k.inputs.robust_scf_section` (diagonalisation + smearing for DFT,
orbital transformation for xTB), then give up.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from .inputs import RESTART_WFN, robust_scf_section
from .sections import get_keyword, section, set_keyword

__all__ = ('electron_count', 'with_more_scf_steps', 'with_robust_scf', 'with_wavefunction_restart')

MIN_MAX_SCF = 100  # the first retry runs at least this many SCF steps (four times the failed run's at least)


def electron_count(atomic_numbers: Sequence[int], charge: int = 0) -> int:
    """Return the number of electrons of a system (all-electron count; CP2K's pseudopotentials do not matter here)."""
    return int(sum(int(number) for number in atomic_numbers)) - int(charge)


def with_wavefunction_restart(parameters: dict) -> dict:
    """Return ``parameters`` that start from the wavefunction of the previous run (``parent_calc/``).

    CP2K falls back to its default guess when the file is missing, so this is safe after a crash as well.
    """
    parameters = copy.deepcopy(parameters)
    set_keyword(section(parameters, 'FORCE_EVAL', 'DFT', 'SCF'), 'SCF_GUESS', 'RESTART')
    set_keyword(section(parameters, 'FORCE_EVAL', 'DFT'), 'WFN_RESTART_FILE_NAME', RESTART_WFN)
    return parameters


def with_more_scf_steps(parameters: dict) -> tuple[dict, int, int]:
    """Return (``parameters`` with four times the SCF steps, at least 100; the old ``MAX_SCF``; the new one)."""
    parameters = copy.deepcopy(parameters)
    scf = section(parameters, 'FORCE_EVAL', 'DFT', 'SCF')
    old = int(get_keyword(scf, 'MAX_SCF', 50))
    new = max(4 * old, MIN_MAX_SCF)
    set_keyword(scf, 'MAX_SCF', new)
    return parameters, old, new


def with_robust_scf(parameters: dict, atomic_numbers: Sequence[int]) -> dict:
    """Return ``parameters`` whose SCF section is the robust one for the method (xTB or DFT) of the input.

    Keeps the convergence target (``EPS_SCF``) and at least the step count of the failed SCF; the electron count
    (for DFT's added orbitals) comes from the atoms and the input's ``CHARGE``.
    """
    parameters = copy.deepcopy(parameters)
    dft = section(parameters, 'FORCE_EVAL', 'DFT')
    scf = section(parameters, 'FORCE_EVAL', 'DFT', 'SCF')
    method = str(get_keyword(section(parameters, 'FORCE_EVAL', 'DFT', 'QS'), 'METHOD', 'GPW')).lower()
    robust = robust_scf_section(
        'xtb' if method == 'xtb' else 'dft',
        float(get_keyword(scf, 'EPS_SCF', 1e-7)),
        int(get_keyword(scf, 'MAX_SCF', 50)),
        electron_count(atomic_numbers, int(get_keyword(dft, 'CHARGE', 0))),
    )
    set_keyword(dft, 'SCF', robust)
    return parameters
