"""Each unit conversion once, against ASE's constants or a definition."""

import numpy as np
import pytest
from ase import units

from aiida_mofal.md import units as md_units


def test_pressure_conversions():
    assert md_units.gpa_to_bar(1.0) == pytest.approx(1.0e4)
    assert md_units.bar_to_gpa(2.5e4) == pytest.approx(2.5)
    assert md_units.gpa_to_atm(0.101325) == pytest.approx(1.0e3)
    assert md_units.atm_to_gpa(1.0) == pytest.approx(101325e-9)
    assert md_units.gpa_to_ev_per_a3(1.0) == pytest.approx(units.GPa)
    assert md_units.ev_per_a3_to_gpa(units.GPa) == pytest.approx(1.0)


def test_energy_and_thermal_constants():
    assert md_units.ev_to_kcal_per_mol(1.0) == pytest.approx(1.0 / (units.kcal / units.mol))
    assert md_units.kcal_per_mol_to_ev(23.0605) == pytest.approx(1.0, rel=1e-5)
    assert md_units.BOLTZMANN_EV_PER_K == pytest.approx(units.kB, rel=1e-6)  # ASE uses CODATA 2014 constants
    # 1 amu (Å/fs)^2 in eV, from ASE's own units (its time unit is Å sqrt(amu/eV))
    assert md_units.AMU_A2_PER_FS2_IN_EV == pytest.approx(1.0 / units.fs**2, rel=1e-6)  # ASE uses CODATA 2014 constants


def test_time_conversions():
    assert md_units.fs_to_ps(500.0) == pytest.approx(0.5)
    assert md_units.ps_to_fs(0.25) == pytest.approx(250.0)
    assert md_units.fs_to_ase_time(1.0) == pytest.approx(units.fs)
    assert md_units.ase_time_to_fs(units.fs) == pytest.approx(1.0)


def test_conversions_take_arrays_and_invert_each_other():
    values = np.array([0.5, -1.5, 3.0])
    pairs = [('gpa_to_bar', 'bar_to_gpa'), ('gpa_to_atm', 'atm_to_gpa'), ('ev_to_kcal_per_mol', 'kcal_per_mol_to_ev'),
             ('fs_to_ps', 'ps_to_fs'), ('gpa_to_ev_per_a3', 'ev_per_a3_to_gpa')]  # fmt: skip
    for forward, backward in pairs:
        np.testing.assert_allclose(getattr(md_units, backward)(getattr(md_units, forward)(values)), values)
        assert getattr(md_units, forward).__doc__.startswith('Convert ')


def test_lammps_unit_styles():
    assert md_units.lammps_time(1.0, 'metal') == pytest.approx(1e-3)
    assert md_units.lammps_time(1.0, 'real') == pytest.approx(1.0)
    assert md_units.lammps_pressure(1.0, 'metal') == pytest.approx(1e4)
    assert md_units.lammps_pressure(1.0, 'real') == pytest.approx(1e9 / 101325)
    assert md_units.lammps_factors('real')['energy'] == pytest.approx(md_units.KCAL_PER_MOL_PER_EV)
    assert md_units.lammps_factors('metal')['velocity'] == 1000.0  # Å/fs -> Å/ps
    with pytest.raises(ValueError, match='unit style'):
        md_units.lammps_time(1.0, 'lj')
