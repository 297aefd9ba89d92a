"""Unit conversions between the MD protocol language (K, GPa, fs, eV) and the engines' own units.

The protocol speaks K, GPa and fs at every interface. LAMMPS ``units metal`` wants bar and ps, ``units real``
(the ReaxFF force fields) atm, fs and kcal/mol, and ASE has its own time unit and pressure in eV/Å^3. Every
constant is defined once here, from the exact SI values (CODATA 2018 for e, N_A, k_B; the amu as in ASE), and every
conversion is one factor: ``gpa_to_bar(x) == x * BAR_PER_GPA``, its inverse divides. Conversions accept numbers and
numpy arrays alike.

Pure on purpose (no import beyond ``math``): the remote MD driver runs a copy of this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = (
    'AMU_A2_PER_FS2_IN_EV',
    'ATM_PER_GPA',
    'BAR_PER_GPA',
    'BOLTZMANN_EV_PER_K',
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
    'lammps_factors',
    'lammps_pressure',
    'lammps_time',
    'ps_to_fs',
)

_ELEMENTARY_CHARGE = 1.602176634e-19  # C (exact)
_AVOGADRO = 6.02214076e23  # 1/mol (exact)
_BOLTZMANN = 1.380649e-23  # J/K (exact)
_AMU = 1.66053906660e-27  # kg (CODATA 2018, as in ASE)
_ANGSTROM = 1e-10  # m
_FEMTOSECOND = 1e-15  # s

BAR_PER_GPA = 1.0e4
"""1 GPa = 10^4 bar (1 bar = 10^5 Pa)."""

ATM_PER_GPA = 1.0e9 / 101325.0
"""1 GPa in standard atmospheres (1 atm = 101325 Pa)."""

EV_PER_A3_PER_GPA = 1.0e9 * _ANGSTROM**3 / _ELEMENTARY_CHARGE
"""1 GPa in eV/Å^3 (about 1/160.2)."""

KCAL_PER_MOL_PER_EV = _ELEMENTARY_CHARGE * _AVOGADRO / 4184.0
"""1 eV in kcal/mol (about 23.06; thermochemical calorie, 4.184 J)."""

BOLTZMANN_EV_PER_K = _BOLTZMANN / _ELEMENTARY_CHARGE
"""k_B in eV/K (8.617333e-5)."""

AMU_A2_PER_FS2_IN_EV = _AMU * (_ANGSTROM / _FEMTOSECOND) ** 2 / _ELEMENTARY_CHARGE
"""1 amu Å^2/fs^2 in eV (about 103.64): kinetic energy of velocities in Å/fs."""

FS_PER_PS = 1000.0

_ASE_TIME_IN_FS = _ANGSTROM * math.sqrt(_AMU / _ELEMENTARY_CHARGE) / _FEMTOSECOND
"""ASE's time unit Å·sqrt(amu/eV) in fs (about 10.18); ``ase.units.fs == 1 / _ASE_TIME_IN_FS``."""


def _factor(factor: float, what: str) -> Callable:
    """Return the conversion ``value * factor``, documented as ``what``."""

    def convert(value):
        return value * factor

    convert.__doc__ = f'Convert {what}.'
    return convert


gpa_to_bar = _factor(BAR_PER_GPA, 'GPa to bar (LAMMPS units metal)')
bar_to_gpa = _factor(1.0 / BAR_PER_GPA, 'bar to GPa')
gpa_to_atm = _factor(ATM_PER_GPA, 'GPa to atm (LAMMPS units real)')
atm_to_gpa = _factor(1.0 / ATM_PER_GPA, 'atm to GPa')
gpa_to_ev_per_a3 = _factor(EV_PER_A3_PER_GPA, "GPa to eV/Å^3 (ASE's pressure and stress unit)")
ev_per_a3_to_gpa = _factor(1.0 / EV_PER_A3_PER_GPA, 'eV/Å^3 to GPa')
ev_to_kcal_per_mol = _factor(KCAL_PER_MOL_PER_EV, 'eV to kcal/mol (LAMMPS units real)')
kcal_per_mol_to_ev = _factor(1.0 / KCAL_PER_MOL_PER_EV, 'kcal/mol to eV')
fs_to_ps = _factor(1.0 / FS_PER_PS, 'fs to ps (LAMMPS units metal)')
ps_to_fs = _factor(FS_PER_PS, 'ps to fs')
fs_to_ase_time = _factor(1.0 / _ASE_TIME_IN_FS, "fs to ASE's internal time unit (what ase.units.fs multiplies)")
ase_time_to_fs = _factor(_ASE_TIME_IN_FS, "ASE's internal time unit to fs")

LAMMPS_UNIT_STYLES: dict[str, dict[str, float]] = {
    'metal': {'time': 1.0 / FS_PER_PS, 'pressure': BAR_PER_GPA, 'energy': 1.0, 'velocity': FS_PER_PS},
    'real': {'time': 1.0, 'pressure': ATM_PER_GPA, 'energy': KCAL_PER_MOL_PER_EV, 'velocity': 1.0},
}
"""The two LAMMPS unit styles the project uses (``metal`` for MACE, ``real`` for ReaxFF): one protocol unit (fs,
GPa, eV, Å/fs) in the style's unit (ps or fs; bar or atm; eV or kcal/mol; Å/ps or Å/fs). Distances are Å in both."""


def lammps_factors(style: str) -> dict[str, float]:
    """Return the factors protocol unit → LAMMPS unit of ``style`` (see :data:`LAMMPS_UNIT_STYLES`)."""
    if style not in LAMMPS_UNIT_STYLES:
        raise ValueError(f'unsupported LAMMPS unit style {style!r}; use one of {", ".join(LAMMPS_UNIT_STYLES)}')
    return LAMMPS_UNIT_STYLES[style]


def lammps_time(time_fs: float, style: str = 'metal') -> float:
    """Return a time given in fs in the time unit of LAMMPS unit ``style`` (``metal``: ps, ``real``: fs)."""
    return time_fs * lammps_factors(style)['time']


def lammps_pressure(pressure_gpa: float, style: str = 'metal') -> float:
    """Return a pressure given in GPa in the pressure unit of LAMMPS unit ``style`` (``metal``: bar, ``real``: atm)."""
    return pressure_gpa * lammps_factors(style)['pressure']
