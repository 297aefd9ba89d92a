"""Unit conversions between the MD protocol language (K, GPa, fs, eV) and the engines' own units.

The protocol speaks K, GPa and fs at every interface. LAMMPS ``units metal`` wants bar and ps, ``units real``
(the ReaxFF force fields) atm, fs and kcal/mol, and ASE has its own time unit (``ase.units.fs``) and pressure
in eV/Å^3. Every conversion lives here so that no engine module multiplies by a bare number.

Constants are exact SI definitions (CODATA 2018 values of e and N_A), the same ones ASE uses.
"""

from __future__ import annotations

import math

__all__ = (
    'ATM_PER_GPA',
    'BAR_PER_GPA',
    'EV_PER_A3_PER_GPA',
    'FS_PER_PS',
    'KCAL_PER_MOL_PER_EV',
    'LAMMPS_UNIT_STYLES',
    'ase_time_to_fs',
    'atm_to_gpa',
    'bar_to_gpa',
    'ev_per_a3_to_gpa',
    'ev_to_kcal_per_mol',
    'fs_to_ase_time',
    'fs_to_ps',
    'gpa_to_atm',
    'gpa_to_bar',
    'gpa_to_ev_per_a3',
    'kcal_per_mol_to_ev',
    'lammps_pressure',
    'lammps_time',
    'ps_to_fs',
)

_ELEMENTARY_CHARGE = 1.602176634e-19  # C (exact)
_AVOGADRO = 6.02214076e23  # 1/mol (exact)
_AMU = 1.66053906660e-27  # kg (CODATA 2018, as in ASE)
_ANGSTROM = 1e-10  # m

BAR_PER_GPA = 1.0e4
"""1 GPa = 10^4 bar (1 bar = 10^5 Pa)."""

ATM_PER_GPA = 1.0e9 / 101325.0
"""1 GPa in standard atmospheres (1 atm = 101325 Pa)."""

EV_PER_A3_PER_GPA = 1.0e9 * _ANGSTROM**3 / _ELEMENTARY_CHARGE
"""1 GPa in eV/Å^3 (about 1/160.2)."""

KCAL_PER_MOL_PER_EV = _ELEMENTARY_CHARGE * _AVOGADRO / 4184.0
"""1 eV in kcal/mol (about 23.06; thermochemical calorie, 4.184 J)."""

FS_PER_PS = 1000.0

_ASE_TIME_IN_FS = 1e15 * _ANGSTROM * math.sqrt(_AMU / _ELEMENTARY_CHARGE)
"""ASE's time unit Å·sqrt(amu/eV) in fs (about 10.18); ``ase.units.fs == 1 / _ASE_TIME_IN_FS``."""

LAMMPS_UNIT_STYLES: dict[str, dict[str, str]] = {
    'metal': {'energy': 'eV', 'time': 'ps', 'pressure': 'bar', 'distance': 'Angstrom'},
    'real': {'energy': 'kcal/mol', 'time': 'fs', 'pressure': 'atm', 'distance': 'Angstrom'},
}
"""The two LAMMPS unit styles the project uses: ``metal`` for MACE, ``real`` for ReaxFF."""


def gpa_to_bar(pressure: float) -> float:
    """Convert GPa to bar (LAMMPS ``units metal``)."""
    return pressure * BAR_PER_GPA


def bar_to_gpa(pressure: float) -> float:
    """Convert bar to GPa."""
    return pressure / BAR_PER_GPA


def gpa_to_atm(pressure: float) -> float:
    """Convert GPa to atm (LAMMPS ``units real``)."""
    return pressure * ATM_PER_GPA


def atm_to_gpa(pressure: float) -> float:
    """Convert atm to GPa."""
    return pressure / ATM_PER_GPA


def gpa_to_ev_per_a3(pressure: float) -> float:
    """Convert GPa to eV/Å^3 (ASE's pressure and stress unit)."""
    return pressure * EV_PER_A3_PER_GPA


def ev_per_a3_to_gpa(pressure: float) -> float:
    """Convert eV/Å^3 to GPa."""
    return pressure / EV_PER_A3_PER_GPA


def ev_to_kcal_per_mol(energy: float) -> float:
    """Convert eV to kcal/mol (LAMMPS ``units real``)."""
    return energy * KCAL_PER_MOL_PER_EV


def kcal_per_mol_to_ev(energy: float) -> float:
    """Convert kcal/mol to eV."""
    return energy / KCAL_PER_MOL_PER_EV


def fs_to_ps(time: float) -> float:
    """Convert fs to ps (LAMMPS ``units metal``)."""
    return time / FS_PER_PS


def ps_to_fs(time: float) -> float:
    """Convert ps to fs."""
    return time * FS_PER_PS


def fs_to_ase_time(time: float) -> float:
    """Convert fs to ASE's internal time unit (what ``ase.units.fs`` multiplies)."""
    return time / _ASE_TIME_IN_FS


def ase_time_to_fs(time: float) -> float:
    """Convert ASE's internal time unit to fs."""
    return time * _ASE_TIME_IN_FS


def lammps_time(time_fs: float, style: str = 'metal') -> float:
    """Return a time given in fs in the time unit of LAMMPS unit ``style`` (``metal``: ps, ``real``: fs)."""
    if style == 'metal':
        return fs_to_ps(time_fs)
    if style == 'real':
        return float(time_fs)
    raise ValueError(f'unsupported LAMMPS unit style {style!r}; use one of {", ".join(LAMMPS_UNIT_STYLES)}')


def lammps_pressure(pressure_gpa: float, style: str = 'metal') -> float:
    """Return a pressure given in GPa in the pressure unit of LAMMPS unit ``style`` (``metal``: bar, ``real``: atm)."""
    if style == 'metal':
        return gpa_to_bar(pressure_gpa)
    if style == 'real':
        return gpa_to_atm(pressure_gpa)
    raise ValueError(f'unsupported LAMMPS unit style {style!r}; use one of {", ".join(LAMMPS_UNIT_STYLES)}')
