"""What every MD engine of the remote driver shares: run statuses, thermodynamics of a state, initial velocities.

The driver (``calculations/scripts/md_run.py`` and its LAMMPS engines) computes the reported temperature and
pressure with :func:`thermo_of` whatever the engine, so ASE, LAMMPS + MACE and LAMMPS + ReaxFF runs report the same
quantities the same way: 3N degrees of freedom, the pressure with its kinetic part. Pure on purpose (numpy and
:mod:`~aiida_mofal.md.units`): the driver runs a copy of this module beside it.

A state ("frame") is a dict with ``positions`` (Å), ``cell`` (Å), ``velocities`` (Å/fs), ``energy`` (eV),
``forces`` (eV/Å) and ``stress`` (eV/Å^3, Voigt ``xx yy zz yz xz xy``, ASE sign, potential part only).
"""

from __future__ import annotations

import math

import numpy as np

from .units import AMU_A2_PER_FS2_IN_EV, BOLTZMANN_EV_PER_K, EV_PER_A3_PER_GPA

__all__ = [
    'STATUSES',
    'STATUS_BLOWUP',
    'STATUS_FINISHED',
    'STATUS_LOST_ATOMS',
    'STATUS_NAN',
    'STATUS_QEQ',
    'STATUS_WALLTIME',
    'MdStop',
    'initial_velocities',
    'kinetic_tensor',
    'thermo_of',
]

STATUS_FINISHED = 'finished'
STATUS_BLOWUP = 'blowup'
STATUS_LOST_ATOMS = 'lost_atoms'
STATUS_NAN = 'nan'
STATUS_QEQ = 'qeq_not_converged'
STATUS_WALLTIME = 'walltime'
STATUSES = (STATUS_FINISHED, STATUS_BLOWUP, STATUS_LOST_ATOMS, STATUS_NAN, STATUS_QEQ, STATUS_WALLTIME)
"""How a walk of the driver ends (``md_result.json``); the parser maps each to an exit code."""


class MdStop(Exception):
    """Ends a walk early with a status (blow-up, NaN, lost atoms, QEq not converged, walltime)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def kinetic_tensor(masses: np.ndarray, velocities: np.ndarray) -> np.ndarray:
    """Return sum m v⊗v in eV (velocities in Å/fs, masses in amu)."""
    return np.einsum('i,ij,ik->jk', masses, velocities, velocities) * AMU_A2_PER_FS2_IN_EV


def thermo_of(frame: dict, masses: np.ndarray) -> dict:
    """Return temperature (K, 3N degrees of freedom), pressure (GPa, virial + kinetic), volume and energies."""
    kinetic = kinetic_tensor(masses, frame['velocities'])
    kinetic_energy = 0.5 * float(np.trace(kinetic))
    volume = float(abs(np.linalg.det(frame['cell'])))
    stress = frame['stress']
    pressure = -float(stress[0] + stress[1] + stress[2]) / 3.0 + float(np.trace(kinetic)) / (3.0 * volume)
    return {
        'temperature': 2.0 * kinetic_energy / (3 * len(masses) * BOLTZMANN_EV_PER_K),
        'pressure': pressure / EV_PER_A3_PER_GPA,
        'volume': volume,
        'potential_energy': float(frame['energy']),
        'kinetic_energy': kinetic_energy,
    }


def initial_velocities(masses: np.ndarray, temperature: float, seed: int) -> np.ndarray:
    """Maxwell–Boltzmann velocities (Å/fs) with zero total momentum, scaled to exactly ``temperature`` (3N dof)."""
    if temperature <= 0:
        return np.zeros((len(masses), 3))
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(BOLTZMANN_EV_PER_K * temperature / (masses * AMU_A2_PER_FS2_IN_EV))
    velocities = rng.standard_normal((len(masses), 3)) * sigma[:, None]
    velocities -= (masses[:, None] * velocities).sum(axis=0) / masses.sum()
    kinetic_energy = 0.5 * np.trace(kinetic_tensor(masses, velocities))
    if kinetic_energy > 0:
        velocities *= math.sqrt(1.5 * len(masses) * BOLTZMANN_EV_PER_K * temperature / kinetic_energy)
    return velocities
