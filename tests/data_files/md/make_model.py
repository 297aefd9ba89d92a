"""Make the tiny MACE model the MD tests run: copper labelled with ASE's EMT, trained with MACE's own CLI.

Reproducible (fixed seeds) and fast (a few minutes on two CPU cores). The model is small on purpose (8 scalar
channels, one message-passing layer, float64) but smooth and accurate enough for stable MD of 32-108 Cu atoms at
100-1500 K. Energies and forces are fitted (stress is not, to keep training cheap); the strained cells teach E(V),
so the model's stress, the strain derivative of its energy, is good enough for NPT. Run from the repository root:

    .venv/bin/python tests/data_files/md/make_model.py

It writes ``tests/data_files/md/cu_emt_tiny.model`` (the labelled frames stay in a temporary directory).
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

HERE = Path(__file__).resolve().parent
MODEL = HERE / 'cu_emt_tiny.model'


def labelled(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=True)
    atoms.calc = None
    atoms.info['REF_energy'] = energy
    atoms.info['REF_stress'] = stress
    atoms.arrays['REF_forces'] = forces
    atoms.info['config_type'] = 'periodic'
    return atoms


def make_frames(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    base = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)  # 32 atoms
    frames = []
    for _ in range(30):  # strained, sheared and rattled cells
        atoms = base.copy()
        strain = np.eye(3) + rng.uniform(-0.05, 0.05, (3, 3)) * np.array([[1, 0.3, 0.3], [0.3, 1, 0.3], [0.3, 0.3, 1]])
        strain *= rng.uniform(0.94, 1.06)
        atoms.set_cell(base.cell[:] @ strain, scale_atoms=True)
        atoms.rattle(stdev=rng.uniform(0.02, 0.2), seed=int(rng.integers(1 << 30)))
        frames.append(labelled(atoms))
    for temperature in (300, 800, 1500):  # thermal disorder, up to a melt
        atoms = base.copy()
        atoms.calc = EMT()
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        dyn = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=0.05, rng=rng)
        for _ in range(12):
            dyn.run(10)
            frames.append(labelled(atoms))
    return frames


def main() -> None:
    frames = make_frames()
    work = Path(tempfile.mkdtemp(prefix='mofal-md-model-'))
    train_file = work / 'cu_emt_frames.extxyz'
    write(train_file, frames, format='extxyz')
    command = [
        sys.executable, '-m', 'mace.cli.run_train',
        '--name', 'cu_emt_tiny', '--train_file', str(train_file), '--valid_fraction', '0.1', '--seed', '1',
        '--model', 'MACE', '--hidden_irreps', '8x0e', '--num_interactions', '1', '--max_ell', '1',
        '--correlation', '2', '--r_max', '4.5', '--num_radial_basis', '6', '--MLP_irreps', '8x0e',
        '--energy_key', 'REF_energy', '--forces_key', 'REF_forces', '--stress_key', 'REF_stress',
        '--loss', 'weighted', '--energy_weight', '10', '--forces_weight', '10',
        '--E0s', 'average', '--batch_size', '4', '--max_num_epochs', '25', '--lr', '0.01',
        '--default_dtype', 'float64', '--device', 'cpu', '--swa', '--start_swa', '18',
        '--work_dir', str(work), '--eval_interval', '1', '--num_workers', '0',
    ]  # fmt: skip
    subprocess.run(command, check=True)
    shutil.copy(work / 'cu_emt_tiny.model', MODEL)
    print(f'wrote {MODEL} ({MODEL.stat().st_size / 1024:.0f} KiB)')


if __name__ == '__main__':
    main()
