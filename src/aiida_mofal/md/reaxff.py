"""ReaxFF in LAMMPS (``units real``, ``atom_style charge``, ``pair_style reaxff`` + ``fix qeq/reaxff``): the pure parts.

The force field's species, the control file's check, the QEq and minimisation parameters (defaults and validation),
and the LAMMPS commands that set up the interaction. The ``lammps-reaxff`` engine of the remote driver
(``calculations/scripts/md_lammps.py``) runs them through LAMMPS' Python module; the integrator fixes are those of
every LAMMPS route (:func:`aiida_mofal.md.lammps.fixes` with ``style='real'``). Pure on purpose: the driver runs a
copy of this module beside it.

Units of the parameters: QEq cutoffs Å, tolerance in charge (e), minimisation energy tolerance unitless (relative),
force tolerance kcal/(mol Å) (LAMMPS ``real``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    'CONTROL_FILENAME',
    'CONTROL_KEYS',
    'FORCE_FIELD_FILENAME',
    'MINIMIZE_DEFAULTS',
    'QEQ_DEFAULTS',
    'QEQ_FAILURE',
    'force_field_species',
    'interaction_commands',
    'minimize_command',
    'parse_control',
    'validate_reaxff_parameters',
]

FORCE_FIELD_FILENAME = 'ffield.reax'
CONTROL_FILENAME = 'control.reax'
QEQ_FAILURE = 'Fix qeq/reaxff CG convergence failed'
"""The warning LAMMPS prints for every step whose charge equilibration did not converge."""

QEQ_DEFAULTS = {'every': 1, 'cutoff_low': 0.0, 'cutoff_high': 10.0, 'tolerance': 1.0e-6, 'maxiter': 200}
"""``fix qeq/reaxff`` every step, taper 0–10 Å, tolerance 1e-6 e, at most 200 CG iterations (LAMMPS' default)."""

MINIMIZE_DEFAULTS = {
    'energy_tolerance': 1.0e-6,
    'force_tolerance': 1.0e-2,
    'max_iterations': 200,
    'max_evaluations': 2000,
    'style': 'cg',
}
"""A fixed-cell minimisation before the MD (``minimize`` and ``min_style`` of LAMMPS)."""

CONTROL_KEYS = {
    'tabulate_long_range',
    'nbrhood_cutoff',
    'hbond_cutoff',
    'bond_graph_cutoff',
    'thb_cutoff',
    'thb_cutoff_sq',
    # output settings of the stand-alone code: LAMMPS reads and ignores them
    'simulation_name',
    'energy_update_freq',
    'write_freq',
    'traj_title',
    'atom_info',
    'atom_forces',
    'atom_velocities',
    'bond_info',
    'angle_info',
}
"""The settings LAMMPS' REAXFF package accepts in a control file."""


def force_field_species(force_field_text: str) -> list[str]:
    """Return the element symbols a ReaxFF parameter file defines (its atom block), in file order.

    :raises ValueError: when the text is not a ReaxFF (LAMMPS ``ffield``) file.
    """
    from ase.data import chemical_symbols

    lines = force_field_text.splitlines()
    try:
        header = 2 + int(lines[1].split()[0])
        count = int(lines[header].split()[0])
        symbols = [lines[header + 4 + 4 * index].split()[0] for index in range(count)]
    except (IndexError, ValueError):
        raise ValueError('cannot read the atom block of this ReaxFF file; is it a LAMMPS ffield file?') from None
    species = [symbol for symbol in symbols if symbol in chemical_symbols[1:]]
    if not species:
        raise ValueError('no element found in the atom block of the ReaxFF file; is it a LAMMPS ffield file?')
    return species


def parse_control(text: str) -> dict[str, float | str]:
    """Return the settings of a ReaxFF control file; refuse lines LAMMPS would refuse.

    :raises ValueError: naming the line or the unknown keyword.
    """
    values: dict[str, float | str] = {}
    for raw in text.splitlines():
        line = raw.split('!')[0].split('#')[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(f'cannot read the ReaxFF control line {raw!r}: expected "keyword value"')
        if parts[0] not in CONTROL_KEYS:
            raise ValueError(f'unknown ReaxFF control setting {parts[0]!r}; LAMMPS accepts {sorted(CONTROL_KEYS)}')
        try:
            values[parts[0]] = float(parts[1])
        except ValueError:
            values[parts[0]] = parts[1]
    return values


def _checked(section: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f'unknown ReaxFF {section} parameters {unknown}; valid: {", ".join(defaults)}')
    merged = {**defaults, **given}
    for key, default in defaults.items():
        value = merged[key]
        if isinstance(default, str):
            if not isinstance(value, str) or not value.isidentifier():
                raise ValueError(f'ReaxFF {section}.{key} must be a LAMMPS keyword like {default!r}, got {value!r}')
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f'ReaxFF {section}.{key} must be a number >= 0, got {value!r}')
        elif isinstance(default, int) and (value != int(value) or value < 1):
            raise ValueError(f'ReaxFF {section}.{key} must be an integer >= 1, got {value!r}')
    return merged


def validate_reaxff_parameters(parameters: Mapping[str, Any] | None) -> dict:
    """Return complete ReaxFF parameters; unknown keys and bad values raise a ``ValueError`` naming them.

    ``qeq`` overrides :data:`QEQ_DEFAULTS`; ``minimize`` is ``None`` (no minimisation), ``true`` (the
    :data:`MINIMIZE_DEFAULTS`) or a mapping overriding them.
    """
    parameters = copy.deepcopy(dict(parameters or {}))
    unknown = sorted(set(parameters) - {'qeq', 'minimize'})
    if unknown:
        raise ValueError(f'unknown ReaxFF parameters {unknown}; valid: qeq, minimize')
    minimize = parameters.get('minimize')
    if minimize is True:
        minimize = {}
    result = {'qeq': _checked('qeq', parameters.get('qeq') or {}, QEQ_DEFAULTS), 'minimize': None}
    if minimize not in (None, False):
        if not isinstance(minimize, Mapping):
            raise ValueError(f'ReaxFF minimize must be null, true or a mapping of {list(MINIMIZE_DEFAULTS)}')
        result['minimize'] = _checked('minimize', minimize, MINIMIZE_DEFAULTS)
    if result['qeq']['cutoff_high'] <= result['qeq']['cutoff_low']:
        raise ValueError('ReaxFF qeq.cutoff_high must be larger than qeq.cutoff_low')
    return result


def interaction_commands(elements: Sequence[str], qeq: Mapping[str, Any], control: bool) -> list[str]:
    """Return the LAMMPS commands of the ReaxFF interaction for atom types ``elements`` (type ``i`` is element i-1).

    The force field and control file are :data:`FORCE_FIELD_FILENAME` and :data:`CONTROL_FILENAME` in the working
    directory; ``control=False`` runs on LAMMPS' defaults (``pair_style reaxff NULL``).
    """
    return [
        f'pair_style reaxff {CONTROL_FILENAME if control else "NULL"}',
        f'pair_coeff * * {FORCE_FIELD_FILENAME} {" ".join(elements)}',
        'neighbor 2.0 bin',
        'neigh_modify every 1 delay 0 check yes',
        f'fix qeq all qeq/reaxff {int(qeq["every"])} {float(qeq["cutoff_low"])!r} {float(qeq["cutoff_high"])!r} '
        f'{float(qeq["tolerance"])!r} reaxff maxiter {int(qeq["maxiter"])}',
    ]


def minimize_command(minimize: Mapping[str, Any]) -> list[str]:
    """Return the LAMMPS commands of a fixed-cell minimisation (validated ``minimize`` parameters)."""
    return [
        f'min_style {minimize["style"]}',
        f'minimize {float(minimize["energy_tolerance"])!r} {float(minimize["force_tolerance"])!r} '
        f'{int(minimize["max_iterations"])} {int(minimize["max_evaluations"])}',
    ]
