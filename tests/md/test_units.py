"""Each unit conversion once, against ASE's constants or a definition."""

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


def test_energy_conversions():
    assert md_units.ev_to_kcal_per_mol(1.0) == pytest.approx(1.0 / (units.kcal / units.mol))
    assert md_units.kcal_per_mol_to_ev(23.0605) == pytest.approx(1.0, rel=1e-5)


def test_time_conversions():
    assert md_units.fs_to_ps(500.0) == pytest.approx(0.5)
    assert md_units.ps_to_fs(0.25) == pytest.approx(250.0)
    assert md_units.fs_to_ase_time(1.0) == pytest.approx(units.fs)
    assert md_units.ase_time_to_fs(units.fs) == pytest.approx(1.0)


def test_lammps_unit_styles():
    assert md_units.lammps_time(1.0, 'metal') == pytest.approx(1e-3)
    assert md_units.lammps_time(1.0, 'real') == pytest.approx(1.0)
    assert md_units.lammps_pressure(1.0, 'metal') == pytest.approx(1e4)
    assert md_units.lammps_pressure(1.0, 'real') == pytest.approx(1e9 / 101325)
    with pytest.raises(ValueError, match='unit style'):
        md_units.lammps_time(1.0, 'lj')
