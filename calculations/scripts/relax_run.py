#!/usr/bin/env python
"""Relax structures with a MACE model: the remote half of ``mofal.relax`` (``MaceRelaxCalculation``).

Stand-alone on purpose: numpy, ase and torch (plus mace-torch unless the model comes as TorchScript), never AiiDA
or aiida-mofal. It imports the MD driver ``md_run.py`` shipped beside it for what both share: loading the model
(:func:`md_run.load_calculator`, guarded against non-finite states), the walltime clock, and reading the
configuration and writing the result file however the job ends (``mofal_md/driver.py``: ``read_config``,
``recorded``).

``relax_input.json`` lists ``structures`` (``name``, ``structure_file``: an npz of numbers, positions, cell, pbc) and
the ``relax`` settings, validated by the CalcJob:

- ``mode``: ``positions`` (fixed cell), ``shape`` (positions and cell shape at fixed volume: ASE's
  ``FrechetCellFilter(constant_volume=True)``, the E–V grid's relaxation) or ``full`` (positions and the whole
  cell at ``pressure`` GPa: ``FrechetCellFilter(scalar_pressure=...)``);
- ``optimizer`` (``FIRE``, ``BFGS``, ``LBFGS``), ``fmax`` (eV/Å; for the cell filters the same bound applies to
  the virial per atom), ``max_steps`` (per job: a relaxation that needs more stops unconverged with its geometry,
  and the work chain continues it).

Per structure it writes ``relaxed_<k>.npz`` (positions, cell, forces, stress) and ``relax_result.json`` lists per
structure its energy (eV), stress (Voigt, eV/Å³, ASE sign), volume, steps, the largest force and whether it
converged; ``status`` is ``done``, ``walltime`` (stopped before the scheduler's limit, geometries kept), ``nan`` (the
model returned a non-finite energy) or ``error``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

CONFIG = 'relax_input.json'
RESULT = 'relax_result.json'
OPTIMIZERS = ('FIRE', 'BFGS', 'LBFGS')
EV_PER_A3_PER_GPA = 1.0 / 160.21766208


class Stop(Exception):
    """Ends the job early with a status (``walltime`` or ``nan``)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def read_structure(path: str):
    """Return the ASE atoms of a structure npz (no ``ase.io``, whose import costs a job seconds)."""
    from ase import Atoms

    with np.load(path) as handle:
        return Atoms(numbers=handle['numbers'], positions=handle['positions'], cell=handle['cell'], pbc=handle['pbc'])


def degrees_of_freedom(atoms, settings: dict):
    """Return what the optimiser moves: the atoms, or a Fréchet cell filter at fixed volume or at a pressure."""
    from ase.filters import FrechetCellFilter

    if settings['mode'] == 'positions':
        return atoms
    if settings['mode'] == 'shape':
        return FrechetCellFilter(atoms, constant_volume=True)
    return FrechetCellFilter(atoms, scalar_pressure=settings['pressure'] * EV_PER_A3_PER_GPA)


def make_optimizer(target, name: str):
    """Return ASE's optimiser ``name`` on ``target``, silent (no log file, no trajectory)."""
    from ase import optimize

    return getattr(optimize, name)(target, logfile=None)


def relax_one(atoms, settings: dict, clock, deadline_check) -> dict:
    """Relax ``atoms`` in place; return energy, stress, forces, steps and convergence."""
    target = degrees_of_freedom(atoms, settings)
    optimizer = make_optimizer(target, settings['optimizer'])
    converged, steps = False, 0
    for converged in optimizer.irun(fmax=settings['fmax'], steps=settings['max_steps']):  # noqa: B007 (the last)
        energy = atoms.get_potential_energy()
        if not np.isfinite(energy):
            raise Stop('nan', f'step {optimizer.nsteps}: the model returned a non-finite energy')
        steps = optimizer.nsteps
        deadline_check()
    energy = float(atoms.get_potential_energy())
    forces = np.array(atoms.get_forces(), dtype=float)
    stress = np.array(atoms.get_stress(voigt=True), dtype=float)
    generalised = np.linalg.norm(target.get_forces(), axis=1)
    return {
        'energy': energy,
        'forces': forces,
        'stress': stress,
        'steps': int(steps),
        'converged': bool(converged),
        'max_force': float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0,
        'max_generalised_force': float(generalised.max()) if len(generalised) else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    """Relax every structure of ``relax_input.json``; always write ``relax_result.json``; exit 1 on an error."""
    import md_run  # shipped beside this script: the MD driver's model loader and walltime clock
    from md_run import driver  # its configuration reader and result file (mofal_md/driver.py)

    config = driver.read_config(argv, CONFIG, __doc__.split('\n')[0])
    started = time.monotonic()
    result = {'status': None, 'message': '', 'structures': []}
    with driver.recorded(result, RESULT, started, indent=1, allow_nan=True):
        calculator = md_run.load_calculator(config)
        result['setup_seconds'] = time.monotonic() - started
        clock = md_run.Clock(config.get('walltime_seconds'))
        settings = config['relax']
        if settings['optimizer'] not in OPTIMIZERS:
            raise ValueError(f'unknown optimizer {settings["optimizer"]!r}; choose one of {", ".join(OPTIMIZERS)}')

        def deadline_check():
            try:
                clock.check(0, 1)
            except md_run.MdStop as stop:
                raise Stop('walltime', stop.message) from None

        for position, entry in enumerate(config['structures']):
            atoms = read_structure(entry['structure_file'])
            atoms.calc = calculator
            begin = time.monotonic()
            status = 'done'
            try:
                outcome = relax_one(atoms, settings, clock, deadline_check)
            except Stop as stop:
                status, result['message'] = stop.status, stop.message
                outcome = None
            if outcome is None:  # keep the geometry reached so far, unconverged
                outcome = {'energy': float('nan'), 'forces': np.zeros((len(atoms), 3)), 'stress': np.zeros(6),
                           'steps': 0, 'converged': False, 'max_force': float('nan'),
                           'max_generalised_force': float('nan')}  # fmt: skip
                if status == 'walltime':
                    outcome.update(relax_one(atoms, {**settings, 'max_steps': 0}, clock, lambda: None))
                    outcome['converged'] = False
            np.savez(f'relaxed_{position}.npz', positions=atoms.positions, cell=atoms.cell.array,
                     forces=outcome['forces'], stress=outcome['stress'])  # fmt: skip
            result['structures'].append({
                'name': entry['name'], 'file': f'relaxed_{position}.npz', 'volume': float(atoms.get_volume()),
                **{key: outcome[key] for key in ('energy', 'steps', 'converged', 'max_force', 'max_generalised_force')},
                'stress': outcome['stress'].tolist(), 'seconds': time.monotonic() - begin,
            })  # fmt: skip
            if status != 'done':
                result['status'] = status
                break
        result['status'] = result['status'] or 'done'
    return 0 if result['status'] != 'error' else 1


if __name__ == '__main__':
    sys.exit(main())
