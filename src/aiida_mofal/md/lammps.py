"""LAMMPS pieces every LAMMPS route shares: the cell, the integrator fixes, the data file, dump and thermo readers.

Three routes use them: the ``lammps-python`` and ``lammps-reaxff`` engines of the remote driver
(``calculations/scripts/md_lammps.py``, LAMMPS' Python module; ``metal`` units for MACE, ``real`` for ReaxFF) and
the ``lammps-mliap`` input (:mod:`aiida_mofal.md.mliap`). Pure on purpose (numpy and its sibling
:mod:`~aiida_mofal.md.units` only): the driver runs a copy of this module beside it.

LAMMPS wants a lower-triangular cell with a positive diagonal; a structure is rotated into it (:func:`lammps_cell`)
and every vector and tensor rotated back when read, so that trajectories are in the input structure's frame.
Stresses and pressure tensors are Voigt vectors ``xx yy zz yz xz xy`` (ASE's order); LAMMPS orders its six
components ``xx yy zz xy xz yz``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import units

__all__ = [
    'COUPLINGS',
    'fix_ids',
    'fixes',
    'lammps_cell',
    'lammps_data',
    'matrix_to_voigt',
    'read_dump',
    'read_table',
    'rotate_voigt',
    'voigt_to_matrix',
]

COUPLINGS = {'isotropic': 'iso', 'anisotropic': 'aniso', 'triclinic': 'tri'}
"""The protocol's barostats as LAMMPS' pressure couplings."""

_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def voigt_to_matrix(voigt: np.ndarray) -> np.ndarray:
    """Return the symmetric 3x3 tensor(s) of Voigt vector(s) ``xx yy zz yz xz xy`` (any leading axes)."""
    voigt = np.asarray(voigt, dtype=float)
    matrix = np.empty((*voigt.shape[:-1], 3, 3))
    for index, (row, column) in enumerate(_VOIGT):
        matrix[..., row, column] = matrix[..., column, row] = voigt[..., index]
    return matrix


def matrix_to_voigt(matrix: np.ndarray) -> np.ndarray:
    """Return the Voigt vector(s) ``xx yy zz yz xz xy`` of symmetric 3x3 tensor(s) (any leading axes)."""
    matrix = np.asarray(matrix, dtype=float)
    return np.stack([matrix[..., row, column] for row, column in _VOIGT], axis=-1)


def rotate_voigt(voigt: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Return Voigt tensor(s) in the frame where vectors are ``x @ rotation`` (``T' = Rᵀ T R``)."""
    return matrix_to_voigt(rotation.T @ voigt_to_matrix(voigt) @ rotation)


def lammps_cell(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return LAMMPS' lower-triangular cell for ``cell`` (rows a, b, c) and the rotation ``R`` with ``x_lmp = x R``.

    :raises ValueError: for a left-handed or flat cell, which no rotation makes lower-triangular with a positive
        diagonal (the one right-handedness check of every LAMMPS route).
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


def fixes(settings: dict, stage: dict, seed: int, style: str = 'metal') -> list[str]:
    """Return the LAMMPS commands that integrate one stage of a validated protocol (targets ramp over its run).

    ``style`` is the LAMMPS unit style (``metal`` for MACE, ``real`` for ReaxFF): damping times and pressures are
    converted from fs and GPa here. Nosé–Hoover fixes are MTK chains of 3, like ASE's ``NoseHooverChainNVT`` and
    ``IsotropicMTKNPT``/``MTKNPT``; Langevin is ``fix langevin`` (zero net force) with ``fix nve`` or ``fix nph``.
    Temperatures count 3N degrees of freedom (``extra/dof 0``), as ASE does. The fix IDs are the same in every
    stage (``integrate``, ``thermostat``), so that a fix redefined after ``read_restart`` takes over the state of the
    previous stage's (the thermostat and barostat chains continue across stages).
    """
    t0, t1 = stage['temperature'] or (None, None)
    p0, p1 = [units.lammps_pressure(p, style) for p in stage['pressure']] if stage['pressure'] else (None, None)
    tdamp = units.lammps_time(settings['temperature_damping'], style)
    pdamp = units.lammps_time(settings['pressure_damping'], style)
    couple = COUPLINGS[settings['barostat']]
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


def fix_ids(commands: Sequence[str]) -> list[str]:
    """Return the IDs of the fixes that ``commands`` define (what ``unfix`` needs)."""
    return [line.split()[1] for line in commands if line.startswith('fix ')]


def lammps_data(atoms, elements: Sequence[str], masses: Sequence[float], charges: Sequence[float] | None = None) -> str:
    """Return a LAMMPS data file of ``atoms`` (ASE-like) in a triclinic box; atom type ``i`` is ``elements[i-1]``.

    ``atom_style atomic``, or ``charge`` when ``charges`` are given (ReaxFF).
    """
    lower, rotation = lammps_cell(atoms.cell.array)
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(elements))
    if unknown:
        raise ValueError(f'atoms contain {unknown}, which are not in the element list {list(elements)}')
    positions = atoms.get_positions() @ rotation
    style = 'atomic' if charges is None else 'charge'
    lines = ['# written by aiida_mofal.md.lammps', '', f'{len(atoms)} atoms', f'{len(elements)} atom types', '']
    lines += [f'0.0 {lower[axis, axis]!r} {name}lo {name}hi' for axis, name in enumerate('xyz')]
    lines += [f'{lower[1, 0]!r} {lower[2, 0]!r} {lower[2, 1]!r} xy xz yz', '', 'Masses', '']
    lines += [f'{index + 1} {mass!r}  # {symbol}' for index, (symbol, mass) in enumerate(zip(elements, masses))]
    lines += ['', f'Atoms  # {style}', '']
    for index, (symbol, (x, y, z)) in enumerate(zip(symbols, positions)):
        charge = '' if charges is None else f' {float(charges[index])!r}'
        lines.append(f'{index + 1} {elements.index(symbol) + 1}{charge} {x!r} {y!r} {z!r}')
    return '\n'.join(lines) + '\n'


def _box(bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the lower-triangular cell and origin of a dump's ``BOX BOUNDS xy xz yz`` block."""
    (xlo_b, xhi_b, xy), (ylo_b, yhi_b, xz), (zlo, zhi, yz) = bounds
    xlo, xhi = xlo_b - min(0.0, xy, xz, xy + xz), xhi_b - max(0.0, xy, xz, xy + xz)
    ylo, yhi = ylo_b - min(0.0, yz), yhi_b - max(0.0, yz)
    return np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]]), np.array([xlo, ylo, zlo])


def read_dump(path: str | Path, cell: np.ndarray | None = None, style: str = 'metal') -> dict[str, np.ndarray]:
    """Read a LAMMPS custom dump (``id`` and any of ``x y z vx vy vz fx fy fz q``) into per-frame arrays.

    A last frame cut short (a killed run) is dropped. Atoms are sorted by ``id``; positions are taken from the box
    origin; velocities become Å/fs (from the unit ``style``), forces stay in the style's unit. With ``cell`` (the input
    structure's), vectors and cells are rotated back into its frame.

    :returns: ``steps``, ``cells`` and, where the dump has the columns, ``positions``, ``velocities``, ``forces``,
        ``charges``.
    """
    rotation_back = np.eye(3) if cell is None else lammps_cell(cell)[1].T
    lines = Path(path).read_text().splitlines()
    frames: dict[str, list] = {'steps': [], 'cells': [], 'positions': [], 'velocities': [], 'forces': [], 'charges': []}
    groups = {'positions': ('x', 'y', 'z'), 'velocities': ('vx', 'vy', 'vz'), 'forces': ('fx', 'fy', 'fz')}
    k = 0
    while k + 9 <= len(lines):
        if not lines[k].startswith('ITEM: TIMESTEP'):
            k += 1
            continue
        count = int(lines[k + 3])
        rows = [row.split() for row in lines[k + 9 : k + 9 + count]]
        columns = lines[k + 8].split()[2:]
        if len(rows) < count or any(len(row) != len(columns) for row in rows):
            break
        bounds = np.array([row.split() for row in lines[k + 5 : k + 8]], dtype=float)
        bounds = np.hstack([bounds, np.zeros((3, 1))]) if bounds.shape[1] == 2 else bounds
        box, origin = _box(bounds)
        table = np.array(rows, dtype=float)
        table = table[np.argsort(table[:, columns.index('id')])]
        frames['steps'].append(int(lines[k + 1]))
        frames['cells'].append(box @ rotation_back)
        for name, group in groups.items():
            if all(column in columns for column in group):
                vectors = table[:, [columns.index(column) for column in group]]
                if name == 'positions':
                    vectors = vectors - origin
                elif name == 'velocities':
                    vectors = vectors / units.lammps_factors(style)['velocity']
                frames[name].append(vectors @ rotation_back)
        if 'q' in columns:
            frames['charges'].append(table[:, columns.index('q')])
        k += 9 + count
    arrays = {key: np.array(value) for key, value in frames.items() if value or key in ('steps', 'cells')}
    arrays['steps'] = arrays['steps'].astype(np.int64)
    return arrays


def read_table(path: str | Path, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Read a whitespace table written by ``fix print`` (``#`` comments) into named columns."""
    table = np.loadtxt(path, comments='#', ndmin=2)
    if table.size and table.shape[1] != len(columns):
        raise ValueError(f'{path} has {table.shape[1]} columns, expected {len(columns)} ({", ".join(columns)})')
    return {name: table[:, index] if table.size else np.zeros(0) for index, name in enumerate(columns)}
