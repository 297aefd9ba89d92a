"""Read what a CP2K single point printed: energy, forces, stress, and whether the SCF really converged.

Units and signs as a ``mofal.dataset`` stores them (see :mod:`aiida_mofal.mlp.configurations`):

* energy: CP2K prints Hartree → eV (``ase.units.Hartree``);
* forces: CP2K prints Hartree/bohr → eV/Å (``Hartree / Bohr``); forces are ``-dE/dR`` in both;
* stress: CP2K prints the *pressure-like* tensor in GPa, positive when the cell wants to expand; ASE's
  convention (``σ = (1/V) ∂E/∂ε``) has the opposite sign, so ``σ_ASE = -σ_CP2K`` converted to eV/Å³.
  Checked against a finite-difference strain derivative of the energy (``tests/engines/test_label.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from ase import units

__all__ = ('FORCE_HARTREE_BOHR_TO_EV_A', 'GPA_TO_EV_A3', 'HARTREE_TO_EV', 'Cp2kOutput', 'parse_cp2k_output')

HARTREE_TO_EV = units.Hartree
FORCE_HARTREE_BOHR_TO_EV_A = units.Hartree / units.Bohr
GPA_TO_EV_A3 = units.GPa

_ENERGY = re.compile(r'ENERGY\| Total FORCE_EVAL \( \w+ \) energy \[a\.u\.\]:\s+(\S+)')
_SCF_CONVERGED = re.compile(r'\*\*\* SCF run converged in\s+(\d+) steps')
_STRESS_HEADER = re.compile(r'STRESS\| (Analytical|Numerical) stress tensor \[GPa\]')
_STRESS_ROW = re.compile(r'STRESS\|\s+([xyz])\s+(\S+)\s+(\S+)\s+(\S+)\s*$')
_VERSION = re.compile(r'CP2K\| version string:\s+(.+)')
_WARNINGS = re.compile(r'The number of warnings for this run is :\s+(\d+)')


@dataclass
class Cp2kOutput:
    """The facts of one CP2K output file, in CP2K's own units (converted by the properties)."""

    energy_hartree: float | None = None
    forces_hartree_bohr: np.ndarray | None = None
    stress_gpa: np.ndarray | None = None
    stress_kind: str | None = None
    scf_converged: bool = False
    scf_steps: int | None = None
    scf_not_converged: bool = False
    walltime_exceeded: bool = False
    aborted: bool = False
    ended: bool = False
    version: str | None = None
    warnings: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def energy_ev(self) -> float | None:
        """Total energy in eV."""
        return None if self.energy_hartree is None else self.energy_hartree * HARTREE_TO_EV

    @property
    def forces_ev_a(self) -> np.ndarray | None:
        """Forces in eV/Å, shape (N, 3)."""
        return None if self.forces_hartree_bohr is None else self.forces_hartree_bohr * FORCE_HARTREE_BOHR_TO_EV_A

    @property
    def stress_ev_a3(self) -> np.ndarray | None:
        """Stress (3, 3) in eV/Å³ with ASE's sign convention (see the module docstring)."""
        return None if self.stress_gpa is None else -self.stress_gpa * GPA_TO_EV_A3

    @property
    def complete(self) -> bool:
        """True when the run ended normally with a converged SCF and an energy: a usable label."""
        return (
            self.ended
            and self.scf_converged
            and not self.scf_not_converged
            and not self.walltime_exceeded
            and not self.aborted
            and self.energy_hartree is not None
        )


def _parse_forces(lines: list[str], start: int) -> np.ndarray:
    rows = []
    for line in lines[start + 1 :]:
        if line.strip().startswith('SUM OF ATOMIC FORCES'):
            break
        fields = line.split()
        if len(fields) == 6 and fields[0].isdigit():
            rows.append([float(value) for value in fields[3:6]])
    return np.array(rows, dtype=float)


def _parse_stress(lines: list[str], start: int) -> np.ndarray | None:
    rows = {}
    for line in lines[start + 1 : start + 6]:
        match = _STRESS_ROW.search(line)
        if match:
            rows[match.group(1)] = [float(value) for value in match.groups()[1:]]
    if set(rows) != {'x', 'y', 'z'}:
        return None
    return np.array([rows['x'], rows['y'], rows['z']], dtype=float)


def parse_cp2k_output(text: str) -> Cp2kOutput:
    """Parse the main output file of a CP2K ``ENERGY_FORCE`` run; the last printed block of each kind wins."""
    result = Cp2kOutput()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if match := _ENERGY.search(line):
            result.energy_hartree = float(match.group(1))
        elif 'ATOMIC FORCES in [a.u.]' in line:
            result.forces_hartree_bohr = _parse_forces(lines, index)
        elif match := _STRESS_HEADER.search(line):
            stress = _parse_stress(lines, index)
            if stress is not None:
                result.stress_gpa, result.stress_kind = stress, match.group(1).lower()
        elif match := _SCF_CONVERGED.search(line):
            result.scf_converged, result.scf_steps = True, int(match.group(1))
        elif 'SCF run NOT converged' in line:
            result.scf_not_converged = True
            result.messages.append(line.strip())
        elif 'exceeded requested execution time' in line:
            result.walltime_exceeded = True
            result.messages.append(line.strip())
        elif 'ABORT' in line:
            result.aborted = True
        elif 'PROGRAM ENDED AT' in line:
            result.ended = True
        elif match := _VERSION.search(line):
            result.version = match.group(1).strip()
        elif match := _WARNINGS.search(line):
            result.warnings = int(match.group(1))
    if result.aborted:
        abort_lines = [line.strip(' *') for line in lines if '*' in line and line.strip(' *')]
        result.messages.extend(abort_lines[-6:])
    return result


def abort_message(text: str) -> str | None:
    """Return the text of CP2K's ``[ABORT]`` banner (``CPABORT``/``CPASSERT``) without its ASCII art, or None.

    The banner is a box of ``*`` whose left 12 columns hold the drawing; the message is to their right, its last
    line the source location (``aobasis/basis_set_types.F:1509``).
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if '[ABORT]' in line), None)
    if start is None:
        return None
    words = []
    for line in lines[start:]:
        stripped = line.strip()
        if stripped.startswith('****'):
            break
        if stripped.startswith('*') and stripped.endswith('*') and len(stripped) > 2:
            content = stripped[1:-1][12:].strip()
            if content:
                words.append(content)
    if not words:
        return None
    location = words.pop() if len(words) > 1 and ('.F:' in words[-1] or '.f90:' in words[-1]) else None
    message = ' '.join(words)
    return f'{message} (at {location})' if location else message
