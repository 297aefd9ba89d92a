"""Make the small GFN1-xTB data set that the training tests use (reproducible; about a minute on 1 core).

    .venv/bin/python tests/data_files/xtb/make_dataset.py

Rattled copies of four small closed-shell organic molecules with H, C, N and O (pyrrole, acetic acid,
acetamide, methanol: the chemistry of imidazolate and carboxylate linkers without the metal) are labelled
with CP2K's GFN1-xTB, non-periodic (analytic Poisson solver), exactly as in ``examples/cp2k_smoke.py``.
Isolated-atom energies (MACE's E0s) use the same settings, spin-polarised (UKS) in the atoms' ground-state
multiplicities (H 2, C 3, N 4, O 3).

Writes, next to this script:

* ``organics_gfn1xtb.extxyz`` -- the frames with ``REF_energy`` (eV) and ``REF_forces`` (eV/Å),
  ``config_type=cluster``, ``molecule=<name>``;
* ``organics_gfn1xtb.json`` -- ``isolated_atom_energies`` (eV) and the ``level_of_theory``.

CP2K is run directly (``cp2k.psmp``, one process, ``OMP_NUM_THREADS=1``), not through AiiDA: this is test
data, and the labelling work chain is tested elsewhere. Energies are read from the ``ENERGY|`` line and
forces from the ``ATOMIC FORCES in [a.u.]`` table that ``&PRINT &FORCES ON`` writes.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.units import Bohr, Hartree

HERE = Path(__file__).resolve().parent
NAME = 'organics_gfn1xtb'
MOLECULES = {'C4H4NH': 'pyrrole', 'CH3COOH': 'acetic acid', 'CH3CONH2': 'acetamide', 'CH3OH': 'methanol'}
FRAMES_PER_MOLECULE = 18
RATTLE_STDEVS = (0.04, 0.08, 0.12)  # Å; cycled, so that the set spans near-equilibrium to strongly distorted
ATOM_MULTIPLICITIES = {'H': 2, 'C': 3, 'N': 4, 'O': 3}
SEED = 20261121
VACUUM = 5.0  # Å around the molecule in the (non-periodic) CP2K box

INPUT = """&GLOBAL
  PROJECT frame
  RUN_TYPE ENERGY_FORCE
  PRINT_LEVEL LOW
&END GLOBAL
&FORCE_EVAL
  METHOD QS
  &DFT
    CHARGE 0
    MULTIPLICITY {multiplicity}
    UKS {uks}
    &QS
      METHOD xTB
      &XTB
        DO_EWALD F
        CHECK_ATOMIC_CHARGES F
      &END XTB
    &END QS
    &POISSON
      PERIODIC NONE
      POISSON_SOLVER ANALYTIC
    &END POISSON
    &SCF
      SCF_GUESS MOPAC
      EPS_SCF 1e-8
      MAX_SCF 200
    &END SCF
  &END DFT
  &SUBSYS
    &CELL
      ABC {box:.6f} {box:.6f} {box:.6f}
      PERIODIC NONE
    &END CELL
    &COORD
{coords}
    &END COORD
  &END SUBSYS
  &PRINT
    &FORCES ON
    &END FORCES
  &END PRINT
&END FORCE_EVAL
"""

ENERGY_RE = re.compile(r'ENERGY\| Total FORCE_EVAL \( QS \) energy \[a\.u\.\]:\s+(\S+)')


def run_cp2k(atoms: Atoms, multiplicity: int, workdir: Path) -> tuple[float, np.ndarray]:
    """Return (energy eV, forces eV/Å) of ``atoms`` from a GFN1-xTB single point."""
    positions = atoms.positions - atoms.positions.mean(axis=0)
    box = float(np.ptp(positions, axis=0).max()) + 2 * VACUUM
    positions = positions + box / 2
    coords = '\n'.join(
        f'      {s} {x:.10f} {y:.10f} {z:.10f}' for s, (x, y, z) in zip(atoms.get_chemical_symbols(), positions)
    )
    uks = 'T' if multiplicity > 1 else 'F'
    (workdir / 'frame.inp').write_text(INPUT.format(multiplicity=multiplicity, uks=uks, box=box, coords=coords))
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run(
        [shutil.which('cp2k.psmp') or 'cp2k', '-i', 'frame.inp'],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    output = result.stdout
    if result.returncode != 0 or 'SCF run converged' not in output:
        raise RuntimeError(f'CP2K failed or did not converge for {atoms.get_chemical_formula()}:\n{output[-2000:]}')
    energy = float(ENERGY_RE.search(output).group(1)) * Hartree
    lines = output.split('ATOMIC FORCES in [a.u.]')[1].splitlines()[3 : 3 + len(atoms)]
    forces = np.array([[float(v) for v in line.split()[3:6]] for line in lines]) * Hartree / Bohr
    return energy, forces


def main() -> int:
    from aiida_mofal.mlp.configurations import validate_configuration, write_extxyz

    rng = np.random.default_rng(SEED)
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        energies = {}
        for symbol, multiplicity in ATOM_MULTIPLICITIES.items():
            energies[symbol], _ = run_cp2k(Atoms(symbol), multiplicity, workdir)
            print(f'E0({symbol}, multiplicity {multiplicity}) = {energies[symbol]:.6f} eV', flush=True)
        for formula, name in MOLECULES.items():
            reference = molecule(formula)
            for index in range(FRAMES_PER_MOLECULE):
                atoms = reference.copy()
                stdev = RATTLE_STDEVS[index % len(RATTLE_STDEVS)]
                atoms.positions += rng.normal(scale=stdev, size=atoms.positions.shape)
                energy, forces = run_cp2k(atoms, 1, workdir)
                atoms.pbc = False
                atoms.info.update(
                    {'REF_energy': energy, 'config_type': 'cluster', 'charge': 0, 'multiplicity': 1, 'molecule': name}
                )
                atoms.arrays['REF_forces'] = forces
                frames.append(validate_configuration(atoms, f'{name} frame {index}'))
            print(f'{name}: {FRAMES_PER_MOLECULE} frames', flush=True)
    (HERE / f'{NAME}.extxyz').write_text(write_extxyz(frames))
    version = subprocess.run(['cp2k.psmp', '--version'], capture_output=True, text=True).stdout.splitlines()[0]
    meta = {
        'isolated_atom_energies': energies,
        'level_of_theory': {'code': version.strip(), 'method': 'GFN1-xTB', 'periodic': 'none', 'eps_scf': 1e-8},
        'atom_multiplicities': ATOM_MULTIPLICITIES,
        'seed': SEED,
        'frames': len(frames),
    }
    (HERE / f'{NAME}.json').write_text(json.dumps(meta, indent=2) + '\n')
    print(f'wrote {len(frames)} frames to {NAME}.extxyz')
    return 0


if __name__ == '__main__':
    sys.exit(main())
