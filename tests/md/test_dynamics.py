"""What every MD engine shares (aiida_mofal.md.dynamics): temperature and pressure of a state, initial velocities."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from aiida_mofal.md import dynamics


def test_thermo_agrees_with_ase():
    atoms = Atoms('Cu4', positions=np.random.default_rng(1).uniform(0, 4, (4, 3)), cell=np.eye(3) * 4.0, pbc=True)
    MaxwellBoltzmannDistribution(atoms, temperature_K=500.0, rng=np.random.default_rng(2))
    stress = np.array([0.01, -0.02, 0.005, 0.001, 0.0, 0.002])  # eV/Å^3, ASE sign
    frame = {'velocities': atoms.get_velocities() * units.fs, 'cell': atoms.cell.array, 'stress': stress,
             'energy': -3.0}  # fmt: skip
    values = dynamics.thermo_of(frame, atoms.get_masses())
    assert values['kinetic_energy'] == pytest.approx(atoms.get_kinetic_energy(), rel=1e-6)
    assert values['temperature'] == pytest.approx(atoms.get_kinetic_energy() / (1.5 * 4 * units.kB), rel=1e-6)
    kinetic = 2 * atoms.get_kinetic_energy() / (3 * atoms.get_volume())
    assert values['pressure'] == pytest.approx((-stress[:3].mean() + kinetic) / units.GPa, rel=1e-6)
    assert values['volume'] == pytest.approx(64.0) and values['potential_energy'] == -3.0


def test_initial_velocities_are_exact_and_momentum_free():
    masses = np.array([1.0, 12.0, 63.5, 14.0] * 10)
    velocities = dynamics.initial_velocities(masses, 300.0, seed=4)
    frame = {'velocities': velocities, 'cell': np.eye(3) * 10.0, 'stress': np.zeros(6), 'energy': 0.0}
    assert dynamics.thermo_of(frame, masses)['temperature'] == pytest.approx(300.0, rel=1e-12)
    np.testing.assert_allclose((masses[:, None] * velocities).sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_array_equal(velocities, dynamics.initial_velocities(masses, 300.0, seed=4))  # the seed decides
    assert not np.allclose(velocities, dynamics.initial_velocities(masses, 300.0, seed=5))
    assert np.all(dynamics.initial_velocities(masses, 0.0, seed=4) == 0.0)


def test_stop_carries_its_status():
    stop = dynamics.MdStop(dynamics.STATUS_QEQ, 'step 10: QEq')
    assert stop.status in dynamics.STATUSES and str(stop) == 'step 10: QEq'
