#!/usr/bin/env python
"""Run the MD walks of one job: the remote half of ``mofal.md`` (``MdCalculation``).

Stand-alone on purpose: it needs numpy and ase (plus torch and mace-torch for the MACE engines, LAMMPS' Python module
for the LAMMPS engines), never AiiDA or aiida-mofal. The CalcJob ships the pure MD modules beside it as the package
``mofal_md`` (copies of ``aiida_mofal.md.{units,schedule,dynamics,lammps,reaxff,driver}``), so the remote counts steps,
ramps, units and thermodynamics with exactly the code the work chains use.

It reads ``md_input.json`` (written by the CalcJob from *validated* settings) and runs its ``walks`` one after the
other with one model load: each walk has its own structure, settings (schedule, pressure, seed) and optional
restart state, and writes into its own ``directory``

- ``trajectory.npz``: per dumped frame ``steps``, ``times`` (fs), ``positions`` (Å), ``cells`` (Å), ``energies``
  (eV), ``forces`` (eV/Å), ``stresses`` (eV/Å^3, Voigt xx yy zz yz xz xy, ASE sign, potential part only),
  ``velocities`` (Å/fs) and, for ReaxFF, ``charges`` (e); plus ``numbers``, ``pbc`` and ``masses``;
- ``thermo.npz``: every ``thermo_every`` steps ``step``, ``time`` (fs), ``temperature`` (K), ``pressure`` (GPa, with
  the kinetic part), ``volume`` (Å^3), ``potential_energy``, ``kinetic_energy``, ``conserved_energy`` (eV), and the
  targets ``target_temperature`` (K) and ``target_pressure`` (GPa);
- ``restart.npz``: the last state that passed the checks (positions, cell, velocities in Å/fs, its step, and for the
  LAMMPS engines LAMMPS' own binary restart, which keeps the thermostat and barostat chains).

``md_result.json`` lists per walk its ``status`` (``finished``, ``blowup``, ``lost_atoms``, ``nan``,
``qeq_not_converged``, ``walltime``), completed steps, a message and timings; a walk that cannot start before the
walltime is ``walltime`` with 0 steps. Engines: ``ase`` (below), ``lammps-python`` and ``lammps-reaxff``
(``md_lammps.py``, imported only when used).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

try:  # on the remote: the copies shipped beside this script
    from mofal_md import driver, dynamics, schedule, units
except ImportError:  # run from a checkout with aiida-mofal installed
    from aiida_mofal.md import driver, dynamics, schedule, units

MdStop = dynamics.MdStop
MACE_ENGINES = ('ase', 'lammps-python')


def _save_npz(path: Path, **arrays) -> None:
    """Write atomically: a crash while writing leaves the previous file intact."""
    temporary = path.with_name(f'{path.name}.tmp.npz')
    np.savez_compressed(temporary, **arrays)
    os.replace(temporary, path)


class Recorder:
    """Collect the frames and thermodynamics of one walk, check them, and write them out regularly."""

    FLUSH_SECONDS = 60.0
    FRAME_KEYS = {'positions': 'positions', 'cell': 'cells', 'velocities': 'velocities', 'energy': 'energies',
                  'forces': 'forces', 'stress': 'stresses', 'charges': 'charges'}  # fmt: skip

    def __init__(self, directory: Path, settings: dict | None, max_temperature: float, atoms):
        self.directory = directory
        self.every = (settings['thermo_every'], settings['dump_every']) if settings else (1, 1)
        self.total = schedule.total_steps(settings) if settings else 0
        self.numbers, self.pbc, self.masses = atoms.numbers.copy(), atoms.pbc.copy(), atoms.get_masses()
        self.max_temperature = max_temperature
        self.frames: list[dict] = []
        self.thermo: list[dict] = []
        self.last_good: dict | None = None
        self.engine = ''
        self.engine_restart: Path | None = None  # a file the engine rewrites with each good state
        self.last_flush = time.monotonic()

    def record(self, step: int, time_fs: float, frame: dict, targets, conserved: float | None) -> None:
        """Check the state at ``step``; keep it as a frame and/or thermo line; raise MdStop when it is broken."""
        finite = all(np.all(np.isfinite(frame[key])) for key in ('positions', 'cell', 'forces', 'stress', 'energy'))
        values = dynamics.thermo_of(frame, self.masses) if finite else None
        if not finite or not math.isfinite(values['temperature']):
            raise MdStop(*self._classify_nan(step, frame))
        if values['temperature'] > self.max_temperature:
            raise MdStop(
                dynamics.STATUS_BLOWUP,
                f'step {step}: temperature {values["temperature"]:.0f} K exceeds the blow-up limit '
                f'{self.max_temperature:.0f} K',
            )
        if step % self.every[0] == 0 or step == self.total:
            nan = float('nan')
            self.thermo.append(
                {'step': step, 'time': time_fs, **values, 'conserved_energy': nan if conserved is None else conserved,
                 'target_temperature': nan if targets[0] is None else targets[0],
                 'target_pressure': nan if targets[1] is None else targets[1]}
            )  # fmt: skip
        if step % self.every[1] == 0 or step == self.total:
            self.frames.append({'step': step, 'time': time_fs, **frame})
        self.last_good = {'step': step, 'time': time_fs, **frame}
        if time.monotonic() - self.last_flush > self.FLUSH_SECONDS:
            self.flush()

    def _classify_nan(self, step: int, frame: dict) -> tuple[str, str]:
        """Tell a blow-up (atoms too close or flown apart, then a NaN) from a NaN the model made by itself."""
        if not all(np.all(np.isfinite(frame[key])) for key in ('positions', 'cell', 'velocities')):
            return dynamics.STATUS_BLOWUP, f'step {step}: non-finite positions, cell or velocities (it blew up)'
        kinetic = 0.5 * np.trace(dynamics.kinetic_tensor(self.masses, frame['velocities']))
        temperature = 2.0 * kinetic / (3 * len(self.masses) * units.BOLTZMANN_EV_PER_K)
        if temperature > self.max_temperature:
            return dynamics.STATUS_BLOWUP, f'step {step}: {temperature:.3g} K and a non-finite model output'
        from ase import Atoms
        from ase.neighborlist import neighbor_list

        atoms = Atoms(numbers=self.numbers, positions=frame['positions'], cell=frame['cell'], pbc=self.pbc)
        if len(neighbor_list('d', atoms, 0.5)):
            return dynamics.STATUS_BLOWUP, f'step {step}: atoms closer than 0.5 Å and a non-finite model output'
        return dynamics.STATUS_NAN, f'step {step}: the model returned a non-finite energy, force or stress'

    def flush(self) -> None:
        """Write trajectory, thermo and restart files (atomically) with what has been recorded so far."""
        if self.frames:
            arrays = {
                name: np.array([frame[key] for frame in self.frames])
                for key, name in self.FRAME_KEYS.items()
                if key in self.frames[0]
            }
            steps = np.array([frame['step'] for frame in self.frames], dtype=np.int64)
            times = np.array([frame['time'] for frame in self.frames])
            _save_npz(self.directory / 'trajectory.npz', numbers=self.numbers, pbc=self.pbc, masses=self.masses,
                      steps=steps, times=times, **arrays)  # fmt: skip
        if self.thermo:
            thermo = {key: np.array([row[key] for row in self.thermo]) for key in self.thermo[0]}
            _save_npz(self.directory / 'thermo.npz', **thermo)
        if self.last_good is not None:
            good = self.last_good
            extra = {}
            if self.engine_restart is not None and self.engine_restart.is_file():
                extra['lammps_restart'] = np.frombuffer(self.engine_restart.read_bytes(), dtype=np.uint8)
            _save_npz(self.directory / 'restart.npz', step=good['step'], time=good['time'], engine=self.engine,
                      numbers=self.numbers,
                      pbc=self.pbc, positions=good['positions'], cell=good['cell'], velocities=good['velocities'],
                      **extra)  # fmt: skip
        self.last_flush = time.monotonic()


class Clock:
    """Stop cleanly before the scheduler's walltime: after a checkpoint, when the next chunk might not fit."""

    def __init__(self, walltime_seconds: float | None):
        self.start = time.monotonic()
        self.walltime = walltime_seconds
        self.margin = None if walltime_seconds is None else min(120.0, 0.1 * walltime_seconds)
        self.last = self.start
        self.longest_chunk = 0.0

    def restart_chunk(self) -> None:
        """Start timing a new chunk (a new walk: its set-up is not an MD chunk)."""
        self.last = time.monotonic()

    def check(self, step: int, total: int) -> None:
        """Raise MdStop(walltime) when the next chunk of steps might not finish in time."""
        now = time.monotonic()
        self.longest_chunk = max(self.longest_chunk, now - self.last)
        self.last = now
        if self.walltime is None or step >= total:
            return
        if now - self.start + 2 * self.longest_chunk + self.margin > self.walltime:
            raise MdStop(
                dynamics.STATUS_WALLTIME, f'stopped at step {step} of {total} to stay inside {self.walltime:.0f} s'
            )


def guarded(model):
    """Return a calculator that gives NaN for non-finite positions or cell instead of calling ``model``.

    An integration that blew up hands the model NaN positions, and MACE's neighbour list (matscipy) never returns
    on them; the NaN then reaches the recorder, which stops the walk as a blow-up.
    """
    from ase.calculators.calculator import Calculator, all_changes

    class Guarded(Calculator):
        implemented_properties = ['energy', 'free_energy', 'forces', 'stress']
        r_max = getattr(model, 'r_max', 5.0)

        def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            if np.all(np.isfinite(self.atoms.positions)) and np.all(np.isfinite(self.atoms.cell.array)):
                model.calculate(self.atoms, ['energy', 'forces', 'stress'], system_changes)
                self.results = dict(model.results)
                return
            nan = float('nan')
            self.results = {'energy': nan, 'free_energy': nan, 'forces': np.full((len(self.atoms), 3), nan),
                            'stress': np.full(6, nan)}  # fmt: skip

    return Guarded()


def load_calculator(config: dict):
    """Return the model's ASE calculator: TorchScript (torch only) or MACECalculator (imports mace-torch).

    Torch threads come from the input, else torch's default. Either is :func:`guarded` against blown-up states.
    """
    import torch

    torch.set_num_threads(int(config.get('torch_threads') or torch.get_num_threads()))
    device = config.get('device', 'cpu')
    if config.get('model_format') == 'torchscript':
        try:
            from mofal_md.torchscript import TorchScriptCalculator
        except ImportError:
            from aiida_mofal.md.torchscript import TorchScriptCalculator
        return guarded(TorchScriptCalculator(config['model_file'], device=device))
    import mace  # noqa: F401  (before torch.load: mace sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD)
    from mace.calculators.mace import MACECalculator

    return guarded(MACECalculator(model_paths=config['model_file'], device=device, default_dtype=config['dtype']))


def evaluate(atoms) -> dict:
    """Return energy (eV), forces (eV/Å) and stress (Voigt, eV/Å^3) of ``atoms``: MACE's one cached pass."""
    return {
        'energy': float(atoms.get_potential_energy()),
        'forces': np.array(atoms.get_forces(), dtype=float),
        'stress': np.array(atoms.get_stress(voigt=True), dtype=float),
    }


def _retarget_ase(dynamics_object, temperature: float | None, pressure: float | None, state: dict) -> None:
    """Move an ASE integrator's targets along a ramp (ASE 3.29 keeps no public setter for the MTK classes).

    The Nosé–Hoover and MTK masses are proportional to kT, as in LAMMPS, so they scale with the target.
    """
    from ase import units

    if temperature is not None and temperature != state.get('temperature'):
        if hasattr(dynamics_object, 'set_temperature'):
            dynamics_object.set_temperature(temperature_K=temperature)
        else:
            factor = temperature / state['temperature']
            for owner in (dynamics_object, getattr(dynamics_object, '_thermostat', None),
                          getattr(dynamics_object, '_barostat', None)):  # fmt: skip
                if owner is None:
                    continue
                for name in ('_kT', '_Q', '_W', '_R'):
                    if hasattr(owner, name):
                        setattr(owner, name, getattr(owner, name) * factor)
                if hasattr(owner, '_temperature_K'):
                    owner._temperature_K = temperature
        state['temperature'] = temperature
    if pressure is not None and pressure != state.get('pressure'):
        if hasattr(dynamics_object, '_pressure_au'):
            dynamics_object._pressure_au = pressure * units.GPa
        elif hasattr(dynamics_object, '_set_externalstress_hydrostatic'):
            dynamics_object._set_externalstress_hydrostatic(-pressure * units.GPa, dynamics_object.hydrostatic)
        state['pressure'] = pressure


def make_ase_dynamics(atoms, settings: dict, stage: dict, targets, seed: int):
    """Return the ASE integrator that does what the protocol says for one stage (see ``docs/guide/md.md``)."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.langevinbaoab import LangevinBAOAB
    from ase.md.nose_hoover_chain import MTKNPT, IsotropicMTKNPT, MaskedMTKNPT, NoseHooverChainNVT
    from ase.md.verlet import VelocityVerlet

    timestep, tdamp, pdamp = (value * units.fs for value in (stage['timestep'], settings['temperature_damping'],
                                                             settings['pressure_damping']))  # fmt: skip
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
    return LangevinBAOAB(atoms, timestep, temperature_K=temperature, externalstress=-pressure_au,
                         hydrostatic=barostat == 'isotropic', T_tau=tdamp, P_tau=pdamp, rng=rng)  # fmt: skip


def run_ase(
    settings: dict, atoms, velocities: np.ndarray, calculator, recorder: Recorder, clock: Clock, gate=None
) -> None:
    """Run the whole schedule with ASE; one integrator for consecutive stages of the same timestep.

    With a ``gate`` (``mofal_md.gate.Gate``) every dumped frame is offered to it after it is recorded; the gate ends
    the walk (``GateStop``) at the first frame with enough unknown atoms.
    """
    from ase import units

    atoms.calc = calculator
    atoms.set_velocities(velocities / units.fs)
    total, points = schedule.total_steps(settings), set(schedule.checkpoints(settings))

    def snapshot():
        return {'positions': atoms.get_positions(), 'cell': np.array(atoms.get_cell()),
                'velocities': atoms.get_velocities() * units.fs, **evaluate(atoms)}  # fmt: skip

    recorder.record(0, 0.0, snapshot(), schedule.targets_at(settings, 0), None)
    time_fs, integrator, state = 0.0, None, {}
    for index, (stage, (first, last)) in enumerate(zip(settings['schedule'], schedule.stage_boundaries(settings))):
        targets = schedule.stage_targets(stage, first, last, first)
        if integrator is None or stage['timestep'] != settings['schedule'][index - 1]['timestep']:
            integrator = make_ase_dynamics(atoms, settings, stage, targets, settings['seed'] + 1 + index)
            state = {'temperature': targets[0], 'pressure': targets[1]}
        conserved = getattr(integrator, 'get_conserved_energy', None)
        for step in range(first + 1, last + 1):
            targets = schedule.stage_targets(stage, first, last, step)
            _retarget_ase(integrator, *targets, state)
            integrator.step()
            time_fs += stage['timestep']
            if step in points:
                recorder.record(step, time_fs, snapshot(), targets, conserved() if conserved else None)
                if gate is not None and step % settings['dump_every'] == 0:
                    gate.check(atoms, step)
                clock.check(step, total)


def read_walk(walk: dict):
    """Return the starting atoms, velocities (Å/fs) and restart state of a walk (restart file or Maxwell–Boltzmann).

    The structure comes as ``structure.npz`` (numbers, positions, cell, pbc): reading it needs no ``ase.io``, whose
    import (scipy, spacegroups) costs a job seconds.
    """
    from ase import Atoms

    with np.load(walk['structure_file']) as handle:
        atoms = Atoms(numbers=handle['numbers'], positions=handle['positions'], cell=handle['cell'], pbc=handle['pbc'])
    settings, restart = walk['settings'], None
    if walk.get('restart_file'):
        with np.load(walk['restart_file']) as handle:
            restart = {key: handle[key] for key in handle.files}
        atoms.set_cell(restart['cell'], scale_atoms=False)
        atoms.set_positions(restart['positions'])
        return atoms, np.array(restart['velocities']), restart
    temperature = schedule.initial_temperature(settings) if settings else 0.0
    seed = settings['seed'] if settings else 0
    return atoms, dynamics.initial_velocities(atoms.get_masses(), temperature, seed), restart


def run_walk(config: dict, walk: dict, calculator, clock: Clock, gate=None) -> dict:
    """Run one walk into its directory; return its result (status, steps, message, timings).

    A walk that its ``gate`` ends early is ``finished``; its result's ``gate`` says where and why.
    """
    directory = Path(walk.get('directory') or '.')
    directory.mkdir(parents=True, exist_ok=True)
    result = {'index': walk['index'], 'status': None, 'message': '', 'completed_steps': 0, 'completed_time': 0.0}
    atoms, velocities, restart = read_walk(walk)
    recorder = Recorder(directory, walk['settings'], walk['max_temperature'], atoms)
    recorder.engine = config['engine']
    engine = None
    start = time.monotonic()
    try:
        clock.restart_chunk()
        clock.check(0, max(recorder.total, 1))
        if gate is not None:
            gate.start_walk()
        if config['engine'] == 'ase':
            run_ase(walk['settings'], atoms, velocities, calculator, recorder, clock, gate)
        else:
            import md_lammps

            engine = md_lammps.make_engine(config, walk, atoms, velocities, restart, calculator, directory)
            recorder.engine_restart = engine.restart_file
            engine.run(recorder, clock)
        result['status'] = dynamics.STATUS_FINISHED
    except MdStop as stop:
        result['status'], result['message'] = stop.status, stop.message
    except Exception as error:
        if gate is None or not isinstance(error, gate.Stop):
            raise
        result['status'], result['message'] = dynamics.STATUS_FINISHED, f'stopped by the gate at {error}'
    finally:
        recorder.flush()
        if engine is not None:
            result['model_evaluations'] = engine.evaluations
            engine.close()
    result['loop_seconds'] = time.monotonic() - start
    if recorder.last_good:
        result.update(completed_steps=recorder.last_good['step'], completed_time=recorder.last_good['time'])
    result['num_frames'] = len(recorder.frames)
    if gate is not None:
        result['gate'] = gate.record()
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the walks of ``md_input.json``; always write ``md_result.json``; exit 1 only on an unexpected error."""
    config = driver.read_config(argv, 'md_input.json', __doc__.split('\n')[0])
    started = time.monotonic()
    result = {'engine': config['engine'], 'status': None, 'walks': [], 'message': ''}
    with driver.recorded(result, 'md_result.json', started, indent=2):
        if config['engine'] not in (*MACE_ENGINES, 'lammps-reaxff'):
            raise ValueError(f'unknown engine {config["engine"]!r}; this script runs ase, lammps-python, lammps-reaxff')
        calculator = load_calculator(config) if config['engine'] in MACE_ENGINES else None
        gate = None
        if config.get('gate'):  # uncertainty-gated exploration (ase engine): the feature and density models, once
            try:
                from mofal_md.gate import Gate
            except ImportError:
                from aiida_mofal.md.gate import Gate
            gate = Gate(config['gate'], device=config.get('device', 'cpu'), dtype=config.get('dtype'))
        result['setup_seconds'] = time.monotonic() - started
        clock = Clock(config.get('walltime_seconds'))
        for walk in config['walks']:
            result['walks'].append(run_walk(config, walk, calculator, clock, gate))
        if calculator is not None:
            import torch

            result['torch_threads'] = torch.get_num_threads()
        result['status'] = 'done'
    return 0 if result['status'] != 'error' else 1


if __name__ == '__main__':
    sys.exit(main())
