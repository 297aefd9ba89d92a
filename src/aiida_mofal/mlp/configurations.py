"""Labelled configurations in MACE's extxyz convention, validated and written losslessly.

A configuration is an :class:`ase.Atoms` carrying its labels under MACE's default keys:

* ``atoms.info['REF_energy']`` -- total energy, eV;
* ``atoms.arrays['REF_forces']`` -- forces, eV/Å, shape ``(N, 3)``;
* ``atoms.info['REF_stress']`` -- stress, eV/Å³, Voigt order ``(xx, yy, zz, yz, xz, xy)`` with ASE's sign
  convention (``atoms.get_stress()``): ``σ = (1/V) ∂E/∂ε``, so a compressed cell has negative stress and
  the pressure is ``P = -tr(σ)/3``. This is what ``mace_run_train`` reads, so files go to MACE unchanged;
  :func:`stress_to_gpa` converts for people.

and its metadata in ``atoms.info``: ``config_type`` (``'periodic'`` or ``'cluster'``), ``charge`` (e) and
``multiplicity`` (2S+1). Extra per-atom arrays (e.g. the ``role`` of cluster atoms) are kept as they are.

ASE's extxyz writer prints per-atom floats with 8 decimals; :func:`write_extxyz` writes every float with
``repr`` so that a data set reads back bit for bit.

Strings are data too and must come back as the same strings (issue 18): an extxyz header is parsed by ASE's
tokeniser, which reads ``it's`` as the start of a quoted value that swallows the rest of the line (``pbc``
included), and turns ``T``, ``1`` or ``nan`` into a bool, an int and a float. So a string is written bare only
when it is *plain* (letters, digits, ``_.+-/:@``) and ASE reads it back as that very string; any other string is
written percent-encoded behind an ``s`` (``s`` + :func:`urllib.parse.quote`: only ``A-Za-z0-9_.-~%``, which every
extxyz reader takes as one bare word), and the header lists the keys so written in ``mofal_strings`` (info keys)
and ``mofal_string_arrays`` (per-atom string columns). :func:`read_extxyz` decodes them; MACE and ASE read the
file unchanged (they see the encoded text of free-text metadata, and the plain values they use, such as
``config_type``, are never encoded).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote, unquote

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.io import read
from ase.io.extxyz import key_val_str_to_dict

__all__ = [
    'CONFIG_TYPES',
    'ENERGY_KEY',
    'FORCES_KEY',
    'STRESS_KEY',
    'EV_PER_A3_TO_GPA',
    'ConfigurationError',
    'validate_configuration',
    'labels_of',
    'write_extxyz',
    'read_extxyz',
    'stress_to_gpa',
    'voigt_from_matrix',
]

ENERGY_KEY = 'REF_energy'
FORCES_KEY = 'REF_forces'
STRESS_KEY = 'REF_stress'
CONFIG_TYPES = ('periodic', 'cluster')
EV_PER_A3_TO_GPA = 160.21766208
MIN_DISTANCE = 0.5  # Å; closer atoms are a broken structure, not chemistry
MAX_CELL_EDGE = 1000.0  # Å; a periodic cell beyond this is a unit slip or an absurd vacuum
# Labels beyond these are broken (or in other units), never chemistry: uranium's all-electron energy is 7.6e5 eV
MAX_ENERGY_PER_ATOM = 1.0e7  # eV
MAX_FORCE = 1.0e5  # eV/Å
MAX_STRESS = 100.0  # eV/Å³ = 16,000 GPa

# Keys that the writer controls itself; everything else in ``info`` must be a plain scalar.
_RESERVED_INFO = {ENERGY_KEY, STRESS_KEY, 'config_type', 'charge', 'multiplicity'}
_RESERVED_ARRAYS = {'numbers', 'positions', FORCES_KEY}
# Keys the extxyz format itself (or this module's string encoding) owns; a configuration may not use them.
_FORMAT_KEYS = {'Lattice', 'Properties', 'pbc', 'mofal_strings', 'mofal_string_arrays'}
_KEY = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_PLAIN = re.compile(r'[A-Za-z0-9_.+\-/:@]+')


class ConfigurationError(ValueError):
    """A configuration that cannot enter a data set; the message names it and says how to fix it."""


def voigt_from_matrix(stress: np.ndarray, name: str = 'configuration') -> np.ndarray:
    """Return the Voigt 6-vector of a symmetric 3x3 stress (or the 6-vector itself)."""
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (6,):
        return stress
    if stress.shape == (9,):
        stress = stress.reshape(3, 3)
    if stress.shape != (3, 3):
        raise ConfigurationError(
            f'{name}: {STRESS_KEY} has shape {stress.shape}; give a Voigt 6-vector (xx, yy, zz, yz, xz, xy) '
            'or a 3x3 matrix in eV/Å³.'
        )
    scale = max(float(np.abs(stress).max()), 1e-12)
    if float(np.abs(stress - stress.T).max()) > 1e-6 * scale:
        raise ConfigurationError(f'{name}: {STRESS_KEY} is not symmetric; a Cauchy stress must be.')
    return np.array([stress[0, 0], stress[1, 1], stress[2, 2], stress[1, 2], stress[0, 2], stress[0, 1]])


def stress_to_gpa(voigt: Sequence[float]) -> np.ndarray:
    """Convert a stress from eV/Å³ to GPa (same sign convention)."""
    return np.asarray(voigt, dtype=float) * EV_PER_A3_TO_GPA


def _finite(value, what: str, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(np.atleast_1d(array)))[:3].tolist()
        raise ConfigurationError(f'{name}: {what} contains NaN or inf (first at index {bad}); refusing it.')
    return array


def validate_configuration(atoms: Atoms, name: str = 'configuration') -> Atoms:
    """Check one configuration and return a normalised copy.

    Normalisation: ``config_type`` inferred from ``pbc`` when absent, ``charge`` 0 and ``multiplicity``
    1 by default, stress as a Voigt 6-vector. Everything that would poison a training set (NaN or inf,
    wrong shapes, overlapping atoms, a periodic structure without a cell, an electron count that
    contradicts the multiplicity) raises :class:`ConfigurationError`.
    """
    if not isinstance(atoms, Atoms):
        raise ConfigurationError(f'{name}: expected an ase.Atoms, got {type(atoms).__name__}.')
    natoms = len(atoms)
    if natoms == 0:
        raise ConfigurationError(f'{name}: has no atoms.')
    atoms = atoms.copy()
    atoms.calc = None
    _finite(atoms.positions, 'positions', name)

    pbc = atoms.pbc
    config_type = atoms.info.get('config_type')
    if config_type is None:
        if pbc.all():
            config_type = 'periodic'
        elif not pbc.any():
            config_type = 'cluster'
        else:
            raise ConfigurationError(
                f'{name}: pbc={pbc.tolist()} is neither periodic nor a cluster; set pbc to all True or all False.'
            )
    if config_type not in CONFIG_TYPES:
        raise ConfigurationError(f'{name}: config_type {config_type!r} is not one of {CONFIG_TYPES}.')
    if config_type == 'periodic':
        if not pbc.all():
            raise ConfigurationError(f'{name}: marked periodic but pbc={pbc.tolist()}; set atoms.pbc = True.')
        _finite(atoms.cell.array, 'the cell', name)
        if abs(atoms.cell.volume) < 1e-6:
            raise ConfigurationError(f'{name}: periodic structure without a cell; give its lattice vectors.')
        if max(atoms.cell.lengths()) > MAX_CELL_EDGE:
            raise ConfigurationError(
                f'{name}: a cell edge of {max(atoms.cell.lengths()):.4g} Å is beyond {MAX_CELL_EDGE:g} Å; '
                'lengths are in Å (and a cluster needs no cell: make it non-periodic).'
            )
    elif pbc.any():
        raise ConfigurationError(f'{name}: a cluster must not be periodic (pbc={pbc.tolist()}).')
    atoms.info['config_type'] = config_type

    charge = atoms.info.get('charge', 0)
    multiplicity = atoms.info.get('multiplicity', 1)
    if float(charge) != int(charge) or int(multiplicity) != float(multiplicity) or int(multiplicity) < 1:
        raise ConfigurationError(
            f'{name}: charge must be an integer and multiplicity an integer >= 1 (got {charge!r}, {multiplicity!r}).'
        )
    charge, multiplicity = int(charge), int(multiplicity)
    electrons = int(atoms.numbers.sum()) - charge
    if electrons < 0 or electrons % 2 == multiplicity % 2:
        raise ConfigurationError(
            f'{name}: {electrons} electrons (charge {charge}) cannot have multiplicity {multiplicity}; '
            'an even electron count needs an odd multiplicity and vice versa.'
        )
    atoms.info['charge'] = charge
    atoms.info['multiplicity'] = multiplicity

    if natoms > 1:
        from ase.geometry import get_distances

        if not atoms.pbc.any():  # a k-d tree: ASE's binning is quadratic for long, thin clusters (issue 18)
            from scipy.spatial import cKDTree

            close = np.array(sorted(cKDTree(atoms.positions).query_pairs(MIN_DISTANCE)), dtype=int).reshape(-1, 2)
        elif natoms <= 2000:
            _, dist = get_distances(atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            np.fill_diagonal(dist, np.inf)
            close = np.argwhere(dist < MIN_DISTANCE)
        else:
            from ase.neighborlist import neighbor_list

            i, j = neighbor_list('ij', atoms, MIN_DISTANCE)
            close = np.stack([i, j], axis=1)
        if len(close):
            i, j = (int(k) for k in close[0])
            raise ConfigurationError(
                f'{name}: atoms {i} ({atoms[i].symbol}) and {j} ({atoms[j].symbol}) are closer than '
                f'{MIN_DISTANCE} Å; the structure is broken (check units and the cell).'
            )

    if ENERGY_KEY in atoms.info:
        energy = _finite(atoms.info[ENERGY_KEY], ENERGY_KEY, name)
        if energy.shape != ():
            raise ConfigurationError(f'{name}: {ENERGY_KEY} must be one number (eV), got shape {energy.shape}.')
        atoms.info[ENERGY_KEY] = float(energy)
        if abs(float(energy)) > MAX_ENERGY_PER_ATOM * natoms:
            raise ConfigurationError(
                f'{name}: {ENERGY_KEY} = {float(energy):.4g} eV is {abs(float(energy)) / natoms:.3g} eV per atom; no '
                f'energy is beyond {MAX_ENERGY_PER_ATOM:g} eV/atom (even all-electron): check the units (eV).'
            )
    if FORCES_KEY in atoms.arrays:
        forces = _finite(atoms.arrays[FORCES_KEY], FORCES_KEY, name)
        if forces.shape != (natoms, 3):
            raise ConfigurationError(
                f'{name}: {FORCES_KEY} has shape {forces.shape} but the structure has {natoms} atoms; '
                f'expected ({natoms}, 3).'
            )
        if np.abs(forces).max() > MAX_FORCE:
            raise ConfigurationError(
                f'{name}: a force of {np.abs(forces).max():.4g} eV/Å is beyond {MAX_FORCE:g} eV/Å: a broken label '
                '(or not eV/Å); refusing it.'
            )
    if STRESS_KEY in atoms.info:
        if config_type == 'cluster':
            raise ConfigurationError(f'{name}: a cluster has no stress; remove {STRESS_KEY}.')
        stress = voigt_from_matrix(_finite(atoms.info[STRESS_KEY], STRESS_KEY, name), name)
        if np.abs(stress).max() > MAX_STRESS:
            raise ConfigurationError(
                f'{name}: a stress of {np.abs(stress).max():.4g} eV/Å³ ({np.abs(stress).max() * EV_PER_A3_TO_GPA:.4g} '
                f'GPa) is beyond {MAX_STRESS:g} eV/Å³; stress is in eV/Å³ (ASE), not GPa or bar.'
            )
        atoms.info[STRESS_KEY] = stress

    for key, value in atoms.info.items():
        if key in _RESERVED_INFO:
            continue
        if not isinstance(value, (str, bool, int, float, np.integer, np.floating)):
            raise ConfigurationError(
                f'{name}: info[{key!r}] is a {type(value).__name__}; only scalars can be stored in a data set.'
            )
    for key in list(atoms.info) + list(atoms.arrays):
        if not isinstance(key, str) or not _KEY.fullmatch(key) or key in _FORMAT_KEYS:
            raise ConfigurationError(
                f'{name}: key {key!r} cannot be stored; keys are identifiers (letters, digits, _) other than '
                f'{", ".join(sorted(_FORMAT_KEYS))}.'
            )
    for key, value in atoms.arrays.items():
        if key in _RESERVED_ARRAYS:
            continue
        if len(value) != natoms or value.ndim > 2:
            raise ConfigurationError(f'{name}: per-atom array {key!r} has shape {value.shape}.')
        if value.dtype.kind == 'f':
            _finite(value, key, name)
        elif value.dtype.kind == 'O' and all(isinstance(item, str) for item in value.ravel()):
            atoms.arrays[key] = value.astype(str)
        elif value.dtype.kind not in 'iubU':
            raise ConfigurationError(f'{name}: per-atom array {key!r} has unsupported dtype {value.dtype}.')
    return atoms


def labels_of(atoms: Atoms) -> set[str]:
    """Return which of ``energy``, ``forces``, ``stress`` a configuration carries."""
    found = set()
    if ENERGY_KEY in atoms.info:
        found.add('energy')
    if FORCES_KEY in atoms.arrays:
        found.add('forces')
    if STRESS_KEY in atoms.info:
        found.add('stress')
    return found


def _is_plain(text: str) -> bool:
    """Return whether ``text`` can be written bare, every extxyz reader giving back this very string."""
    if not _PLAIN.fullmatch(text):
        return False
    parsed = key_val_str_to_dict(f'k={text}').get('k')
    return isinstance(parsed, str) and parsed == text


def encode_string(text: str) -> str:
    """Return the one-word form of any string (``s`` + percent-encoding); :func:`decode_string` inverts it."""
    return 's' + quote(text, safe='')


def decode_string(word: str) -> str:
    """Invert :func:`encode_string`."""
    if not word.startswith('s'):
        raise ConfigurationError(f'{word!r} is not an encoded string (it must start with "s").')
    return unquote(word[1:], errors='strict')


def _fmt(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return 'T' if value else 'F'
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


_TYPE_CODE = {'f': 'R', 'i': 'I', 'u': 'I', 'b': 'L', 'U': 'S'}


def _write_one(atoms: Atoms, out: io.StringIO) -> None:
    natoms = len(atoms)
    columns = [('species', 'S', 1, np.array(atoms.get_chemical_symbols())), ('pos', 'R', 3, atoms.positions)]
    if FORCES_KEY in atoms.arrays:
        columns.append((FORCES_KEY, 'R', 3, atoms.arrays[FORCES_KEY]))
    encoded_arrays = []
    for key in sorted(set(atoms.arrays) - _RESERVED_ARRAYS):
        value = atoms.arrays[key]
        width = 1 if value.ndim == 1 else value.shape[1]
        if value.dtype.kind == 'U' and not all(_is_plain(str(item)) for item in value.ravel()):
            encoded_arrays.append(key)
            value = np.vectorize(encode_string, otypes=[object])(value.astype(str))
        columns.append((key, _TYPE_CODE[value.dtype.kind] if value.dtype.kind != 'O' else 'S', width, value))
    header = []
    if atoms.cell.rank > 0:
        header.append('Lattice="' + ' '.join(repr(float(x)) for x in atoms.cell.array.ravel()) + '"')
    header.append('Properties=' + ':'.join(f'{k}:{t}:{w}' for k, t, w, _ in columns))
    if ENERGY_KEY in atoms.info:
        header.append(f'{ENERGY_KEY}={_fmt(atoms.info[ENERGY_KEY])}')
    if STRESS_KEY in atoms.info:
        header.append(f'{STRESS_KEY}="' + ' '.join(_fmt(x) for x in atoms.info[STRESS_KEY]) + '"')
    for key in ('config_type', 'charge', 'multiplicity'):
        header.append(f'{key}={_fmt(atoms.info[key])}')
    encoded_info = []
    for key in sorted(set(atoms.info) - _RESERVED_INFO):
        value = atoms.info[key]
        if isinstance(value, (str, np.str_)) and not _is_plain(str(value)):
            encoded_info.append(key)
            value = encode_string(str(value))
        header.append(f'{key}={_fmt(value)}')
    # the lists end with ':' so that no list (e.g. a lone key `T`) reads back as anything but a string
    if encoded_info:
        header.append('mofal_strings=' + ':'.join(encoded_info) + ':')
    if encoded_arrays:
        header.append('mofal_string_arrays=' + ':'.join(encoded_arrays) + ':')
    header.append('pbc="' + ' '.join('T' if p else 'F' for p in atoms.pbc) + '"')
    out.write(f'{natoms}\n{" ".join(header)}\n')
    for index in range(natoms):
        fields = []
        for _, _, width, value in columns:
            row = value[index] if width > 1 else [value[index]]
            fields.extend(_fmt(x) for x in row)
        out.write(' '.join(fields) + '\n')


def write_extxyz(configurations: Iterable[Atoms]) -> str:
    """Serialise validated configurations to extxyz text with full float precision."""
    out = io.StringIO()
    for atoms in configurations:
        _write_one(atoms, out)
    return out.getvalue()


def read_extxyz(text_or_path) -> list[Atoms]:
    """Read configurations written by :func:`write_extxyz` (or any extxyz with MACE's keys).

    ASE turns keys it knows (``energy``, ``forces``, ``stress``) into a calculator; those are moved to the
    ``REF_`` keys so that labels never hide inside a calculator.
    """
    handle = io.StringIO(text_or_path) if isinstance(text_or_path, str) and '\n' in text_or_path else text_or_path
    frames = read(handle, index=':', format='extxyz')
    result = []
    for atoms in frames:
        if atoms.calc is not None:
            results = atoms.calc.results
            if 'energy' in results and ENERGY_KEY not in atoms.info:
                atoms.info[ENERGY_KEY] = float(results['energy'])
            if 'forces' in results and FORCES_KEY not in atoms.arrays:
                atoms.arrays[FORCES_KEY] = np.array(results['forces'])
            if 'stress' in results and STRESS_KEY not in atoms.info:
                atoms.info[STRESS_KEY] = np.array(results['stress'])
            atoms.calc = None
        if STRESS_KEY in atoms.info:
            atoms.info[STRESS_KEY] = voigt_from_matrix(atoms.info[STRESS_KEY])
        for name in [name for name, array in atoms.arrays.items() if array.dtype == object]:
            atoms.arrays[name] = atoms.arrays[name].astype(str)  # ASE returns string columns as objects at times
        decode_strings(atoms)
        result.append(atoms)
    return result


def _key_list(atoms: Atoms, key: str) -> list[str]:
    value = atoms.info.pop(key, None)
    if value is None:
        return []
    return [name for name in str(value).split(':') if name]


def decode_strings(atoms: Atoms) -> None:
    """Undo the string encoding of :func:`write_extxyz` (see the module docstring) in place.

    Any reader of files this package wrote calls it, so encoded strings never reach a node.
    """
    for key in _key_list(atoms, 'mofal_strings'):
        if key in atoms.info:
            atoms.info[key] = decode_string(str(atoms.info[key]))
    for key in _key_list(atoms, 'mofal_string_arrays'):
        if key in atoms.arrays:
            words = atoms.arrays[key].astype(str)
            decoded = [decode_string(word) for word in words.ravel()]
            atoms.arrays[key] = np.array(decoded, dtype=str).reshape(words.shape)


def element_symbols(numbers: Iterable[int]) -> list[str]:
    """Return the sorted element symbols of a set of atomic numbers."""
    return [chemical_symbols[z] for z in sorted(set(int(z) for z in numbers))]
