r"""What may reach a CP2K input file: every string of a labelling protocol checked before anything runs (issue 18).

aiida-cp2k writes each keyword as ``KEY value`` on its own line, so a value with a newline starts a new line of
the input: ``{'MAX_SCF': '5\n@INCLUDE /etc/passwd'}`` makes CP2K's preprocessor read any file, and an ``xc`` of
``PBE\n&END XC ...`` rewrites a section. Values that are not free-form must be one of the names CP2K knows
(:data:`XC_FUNCTIONALS`, :data:`DISPERSIONS`, ...); names of data files must be plain file names that exist in
CP2K's data directory (when it is known); basis set and potential names are single words; and the free-form
``cp2k`` section may hold any keyword, but no key or value with a line break, a ``@`` (preprocessor directive)
or a ``&`` (section start), and keys must be CP2K identifiers. Numbers must be finite and within what is
physically meaningful (a vacuum of 1e308 Å is refused here, not by an out-of-memory grid).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ase.data import chemical_symbols

__all__ = ('DISPERSIONS', 'MAX_LABEL_ATOMS', 'XC_FUNCTIONALS', 'SettingsError', 'check_label_settings', 'safe_word')

# XC_FUNCTIONAL's section parameter (CP2K manual, FORCE_EVAL/DFT/XC/XC_FUNCTIONAL): the shortcuts CP2K accepts.
XC_FUNCTIONALS = frozenset(
    ('B3LYP', 'BEEFVDW', 'BLYP', 'BP', 'HCTH120', 'LDA', 'NONE', 'NO_SHORTCUT', 'OLYP', 'PADE', 'PBE', 'PBE0', 'TPSS')
)
DISPERSIONS = {'D3(BJ)': 'DFTD3(BJ)', 'D3': 'DFTD3', 'D2': 'DFTD2'}  # protocol name -> PAIR_POTENTIAL TYPE
POISSON_SOLVERS = frozenset(('ANALYTIC', 'IMPLICIT', 'MT', 'MULTIPOLE', 'WAVELET'))
STRESS_TENSORS = frozenset(('ANALYTICAL', 'NUMERICAL', 'DIAGONAL_ANALYTICAL', 'DIAGONAL_NUMERICAL'))
MAX_LABEL_ATOMS = {'xtb': 5000, 'dft': 2000}  # beyond this a single point is days of CPU: a mistake, not a label

_FILE_NAME = re.compile(r'[A-Za-z0-9_.+-]+')
_WORD = re.compile(r'[A-Za-z0-9_.+()\-]+')
_KEYWORD = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_FORBIDDEN = re.compile(r'[\n\r\x00-\x1f@&]')


class SettingsError(ValueError):
    """A labelling setting that must not reach CP2K's input; the message names the key and what is allowed."""


def safe_word(value: Any, key: str, pattern: re.Pattern = _WORD) -> str:
    """Return ``value`` if it is a string of one word matching ``pattern``; else raise :class:`SettingsError`."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        allowed = '_.+-' if pattern is _FILE_NAME else '_.+-()'
        raise SettingsError(f'settings.{key}: {value!r} is not a single name (letters, digits and {allowed} only).')
    return value


def _number(settings: Mapping, path: str, low: float, high: float, *, integer: bool = False, unit: str = '') -> None:
    value: Any = settings
    for part in path.split('.'):
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise SettingsError(f'settings.{path}: {value!r} is not a finite number{f" ({unit})" if unit else ""}.')
    if integer and float(value) != int(value):
        raise SettingsError(f'settings.{path}: {value!r} must be an integer.')
    if not low <= float(value) <= high:
        raise SettingsError(
            f'settings.{path}: {value!r} {unit} is outside [{low:g}, {high:g}]{f" {unit}" if unit else ""}.'
        )


def _check_raw(value: Any, path: str) -> None:
    """Walk the free-form ``cp2k`` section: keys CP2K identifiers, strings on one line, no ``@``/``&``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not (key == '_' or _KEYWORD.fullmatch(key)):
                raise SettingsError(f'settings.{path}: key {key!r} is not a CP2K keyword or section name.')
            _check_raw(item, f'{path}.{key}')
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_raw(item, f'{path}[{index}]')
    elif isinstance(value, str):
        if _FORBIDDEN.search(value):
            raise SettingsError(
                f'settings.{path}: {value!r} contains a line break, a control character, "@" or "&"; these would '
                'start a new line, a preprocessor directive (@INCLUDE) or a section in the CP2K input.'
            )
    elif value is not None and not isinstance(value, bool | int | float):
        raise SettingsError(f'settings.{path}: a {type(value).__name__} cannot be written into a CP2K input.')
    elif isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f'settings.{path}: {value!r} is not a finite number.')


def check_label_settings(settings: Mapping, data_dir: str | Path | None = None) -> None:
    """Refuse labelling ``settings`` (a resolved ``label`` protocol) that would write unchecked text into CP2K's input.

    :param data_dir: CP2K's data directory when known (local code): the basis set and potential files must exist.
    :raises SettingsError: naming the key, the value and what is allowed.
    """
    method = settings.get('method')
    if method not in ('dft', 'xtb'):
        raise SettingsError(f'settings.method: {method!r} is not dft or xtb.')
    _number(settings, 'scf.eps_scf', 1e-14, 1e-2)
    _number(settings, 'scf.max_scf', 1, 100_000, integer=True)
    _number(settings, 'scf.outer_max_scf', 0, 10_000, integer=True)
    _number(settings, 'scf.smearing_temperature', 0.0, 100_000.0, unit='K')
    _number(settings, 'cluster.vacuum', 0.0, 100.0, unit='Å')
    _number(settings, 'cluster.box_factor', 1.0, 10.0)
    _number(settings, 'cluster.density_margin', 0.0, 50.0, unit='Å')
    if 'pack' in settings.get('calculation', {}):
        _number(settings, 'calculation.pack', 1, 10_000, integer=True)
    if 'farm_groups' in settings.get('calculation', {}):
        _number(settings, 'calculation.farm_groups', 1, 10_000, integer=True)
    if not isinstance(settings.get('calculation', {}).get('farm', True), bool):
        raise SettingsError(f'settings.calculation.farm: {settings["calculation"]["farm"]!r} is not true or false.')
    solver = str(settings['cluster']['poisson_solver']).upper()
    if solver not in POISSON_SOLVERS:
        raise SettingsError(
            f'settings.cluster.poisson_solver: {solver!r} is not one of {", ".join(sorted(POISSON_SOLVERS))}.'
        )
    stress = settings['cell']['stress_tensor']
    if stress not in STRESS_TENSORS:
        raise SettingsError(
            f'settings.cell.stress_tensor: {stress!r} is not one of {", ".join(sorted(STRESS_TENSORS))}.'
        )
    _check_raw(settings.get('cp2k') or {}, 'cp2k')
    if method == 'xtb':
        return
    xc = settings.get('xc')
    if not isinstance(xc, str) or xc.upper() not in XC_FUNCTIONALS:
        raise SettingsError(
            f'settings.xc: {xc!r} is not a CP2K XC_FUNCTIONAL shortcut ({", ".join(sorted(XC_FUNCTIONALS))}).'
        )
    dispersion = settings.get('dispersion')
    if dispersion is not None and (not isinstance(dispersion, str) or dispersion.upper() not in DISPERSIONS):
        raise SettingsError(f'settings.dispersion: {dispersion!r} is not one of {", ".join(DISPERSIONS)} or null.')
    _number(settings, 'cutoff', 50.0, 10_000.0, unit='Ry')
    _number(settings, 'rel_cutoff', 10.0, 1_000.0, unit='Ry')
    files = settings.get('basis_set_files')
    if not isinstance(files, list | tuple) or not files:
        raise SettingsError('settings.basis_set_files: give a list of CP2K basis set file names.')
    for index, name in enumerate([*files, settings.get('potential_file')]):
        key = f'basis_set_files[{index}]' if index < len(files) else 'potential_file'
        safe_word(name, key, _FILE_NAME)
        if data_dir is not None and not (Path(data_dir) / name).is_file():
            raise SettingsError(f"settings.{key}: no file {name!r} in CP2K's data directory {data_dir}.")
    safe_word(settings.get('pseudopotential'), 'pseudopotential')
    basis = settings.get('basis_set')
    if not isinstance(basis, Mapping) or 'default' not in basis:
        raise SettingsError("settings.basis_set: give a mapping with a 'default' basis set (and per-element ones).")
    for element, name in basis.items():
        if element != 'default' and element not in chemical_symbols[1:]:
            raise SettingsError(f'settings.basis_set: {element!r} is neither an element symbol nor default.')
        safe_word(name, f'basis_set.{element}')
