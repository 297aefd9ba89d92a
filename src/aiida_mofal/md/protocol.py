"""The MD protocol language: one validated dict that every engine (ASE, LAMMPS + MACE, LAMMPS + ReaxFF) runs.

Units at this interface are K, GPa and fs. A settings dict looks like::

    ensemble: npt            # nve | nvt | npt
    thermostat: nose-hoover  # nose-hoover | langevin
    barostat: isotropic      # isotropic | anisotropic | triclinic
    timestep: 0.5            # fs
    temperature_damping: 100.0
    pressure_damping: 1000.0
    schedule:                # consecutive stages; [start, end] is a linear ramp, a number a hold
      - {steps: 1000, temperature: 300.0, pressure: 0.0}
      - {steps: 2000, temperature: [300.0, 1500.0], pressure: [0.0, 0.5]}
    dump_every: 10
    seed: 0
    initial_temperature: null

:func:`validate_md_settings` returns a complete, normalised copy (every optional key filled, every stage with
``temperature`` and ``pressure`` as ``[start, end]`` pairs or ``None`` and its own ``timestep``), so engines
never re-implement defaults. Validation happens before anything is submitted: a bad value is a
:class:`~aiida_mofal.protocols.ProtocolError` naming the key and what would be valid.

The schedule arithmetic (stage bounds, targets at a step, elapsed time, the rest of a run after some steps) lives in
:mod:`aiida_mofal.md.schedule`, pure so that the remote driver runs the same code; this module re-exports it with
validation in front. Frames are dumped at step 0 and every ``dump_every`` steps (and at the last step).
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

from aiida_mofal.md import schedule
from aiida_mofal.protocols import ProtocolError, load_protocol

__all__ = (
    'BAROSTATS',
    'ENSEMBLES',
    'THERMOSTATS',
    'elapsed_time',
    'load_md_settings',
    'max_temperature',
    'remaining_settings',
    'stage_boundaries',
    'targets_at',
    'total_steps',
    'total_time',
    'validate_md_settings',
)

ENSEMBLES = ('nve', 'nvt', 'npt')
THERMOSTATS = ('nose-hoover', 'langevin')
BAROSTATS = ('isotropic', 'anisotropic', 'triclinic')

_DEFAULTS: dict[str, Any] = {
    'thermostat': 'nose-hoover',
    'barostat': 'isotropic',
    'temperature_damping': 100.0,
    'pressure_damping': 1000.0,
    'dump_every': 10,
    'thermo_every': None,
    'seed': 0,
    'initial_temperature': None,
    'fail_on_broken_bonds': False,
    'max_temperature': None,
}
"""Optional keys and their defaults; ``thermo_every: None`` means ``dump_every``, ``max_temperature: None`` a limit
derived from the schedule (:func:`max_temperature`)."""

_REQUIRED = ('ensemble', 'timestep', 'schedule')
_PASSTHROUGH = ('protocol', 'description')
_STAGE_KEYS = ('steps', 'temperature', 'pressure', 'timestep')


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _positive_number(settings: Mapping, key: str) -> float:
    value = settings[key]
    if not _is_number(value) or float(value) <= 0:
        raise ProtocolError(f'MD setting {key!r} must be a positive finite number, got {value!r}')
    return float(value)


def _positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
        raise ProtocolError(f'MD setting {name!r} must be an integer >= {minimum}, got {value!r}')
    if int(value) < minimum:
        raise ProtocolError(f'MD setting {name!r} must be an integer >= {minimum}, got {value!r}')
    return int(value)


def _pair(value: Any, name: str) -> list[float] | None:
    """Return a ``[start, end]`` pair for a hold (number) or ramp (two numbers); ``None`` stays ``None``."""
    if value is None:
        return None
    if _is_number(value):
        return [float(value), float(value)]
    if isinstance(value, list | tuple) and len(value) == 2 and all(_is_number(item) for item in value):
        return [float(value[0]), float(value[1])]
    raise ProtocolError(f'{name} must be a number (hold) or a [start, end] pair (linear ramp), got {value!r}')


SANE_TIMESTEP = 5.0  # fs; atoms (H above all) need ~0.5-2 fs: beyond this a run blows up (tests do it on purpose)
MAX_TIMESTEP = 100.0  # fs; beyond this it is a unit slip (ps for fs), refused
MAX_TEMPERATURE = 10_000.0  # K
MAX_PRESSURE = 100.0  # GPa; MOFs amorphise at a few GPa


def _physical(name: str, timestep: float, temperature: list | None, pressure: list | None) -> None:
    """Refuse values that no MD of a MOF means (most often a unit slip: bar for GPa, ps for fs, °C...).

    A timestep between :data:`SANE_TIMESTEP` and :data:`MAX_TIMESTEP` is warned about, not refused: the handlers'
    tests blow walks up with it on purpose; a campaign refuses it (``workchains/campaign_inputs.py``).
    """
    if timestep > MAX_TIMESTEP:
        raise ProtocolError(
            f'{name}.timestep {timestep:g} fs is beyond {MAX_TIMESTEP:g} fs; MD of atoms needs 0.5-2 fs '
            '(the timestep is in fs, not ps).'
        )
    if timestep > SANE_TIMESTEP:
        warnings.warn(
            f'{name}.timestep {timestep:g} fs: MD of atoms needs 0.5-2 fs (the timestep is in fs); expect a blow-up',
            stacklevel=4,
        )
    if temperature is not None and max(temperature) > MAX_TEMPERATURE:
        raise ProtocolError(f'{name}.temperature {max(temperature):g} K is beyond {MAX_TEMPERATURE:g} K (give kelvin).')
    if pressure is not None and max(abs(p) for p in pressure) > MAX_PRESSURE:
        raise ProtocolError(
            f'{name}.pressure {max(pressure, key=abs):g} GPa is beyond ±{MAX_PRESSURE:g} GPa; pressures are in GPa '
            '(1 GPa = 10,000 bar).'
        )


def _validate_stage(stage: Any, index: int, ensemble: str, timestep: float) -> dict:
    name = f'schedule[{index}]'
    if not isinstance(stage, Mapping):
        raise ProtocolError(f'{name} must be a mapping like {{steps: 1000, temperature: 300.0}}, got {stage!r}')
    unknown = sorted(set(stage) - set(_STAGE_KEYS))
    if unknown:
        raise ProtocolError(f'{name} has unknown keys {unknown}; valid keys: {", ".join(_STAGE_KEYS)}')
    if 'steps' not in stage:
        raise ProtocolError(f'{name} needs a number of steps')
    steps = _positive_int(stage['steps'], f'{name}.steps')
    temperature = _pair(stage.get('temperature'), f'{name}.temperature (K)')
    pressure = _pair(stage.get('pressure'), f'{name}.pressure (GPa)')
    stage_timestep = stage.get('timestep', timestep)
    if not _is_number(stage_timestep) or float(stage_timestep) <= 0:
        raise ProtocolError(f'{name}.timestep must be a positive number of fs, got {stage_timestep!r}')
    if ensemble in ('nvt', 'npt'):
        if temperature is None:
            raise ProtocolError(f'{name} needs a temperature (K) for ensemble {ensemble!r}')
        if min(temperature) <= 0:
            raise ProtocolError(f'{name}.temperature must be > 0 K for a thermostat, got {stage["temperature"]!r}')
    elif temperature is not None and min(temperature) < 0:
        raise ProtocolError(f'{name}.temperature must be >= 0 K, got {stage["temperature"]!r}')
    if ensemble == 'npt' and pressure is None:
        raise ProtocolError(f'{name} needs a pressure (GPa) for ensemble npt')
    _physical(name, float(stage_timestep), temperature, pressure)
    return {'steps': steps, 'temperature': temperature, 'pressure': pressure, 'timestep': float(stage_timestep)}


def validate_md_settings(settings: Mapping[str, Any]) -> dict:
    """Return a complete, normalised copy of the MD ``settings``; the input is never modified.

    :raises ProtocolError: (a ``ValueError``) naming the key and the valid values, for a missing required key, an
        unknown key, or a value out of range.
    """
    if not isinstance(settings, Mapping):
        raise ProtocolError(f'MD settings must be a mapping, got {type(settings).__name__}')
    settings = copy.deepcopy(dict(settings))
    known = set(_REQUIRED) | set(_DEFAULTS) | set(_PASSTHROUGH)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ProtocolError(f'unknown MD settings {unknown}; valid keys: {", ".join(sorted(known))}')
    missing = [key for key in _REQUIRED if key not in settings]
    if missing:
        raise ProtocolError(f'MD settings miss the required keys {missing}')
    result: dict[str, Any] = {key: settings.get(key, copy.deepcopy(default)) for key, default in _DEFAULTS.items()}
    for key in _PASSTHROUGH:
        if key in settings:
            result[key] = settings[key]

    ensemble = settings['ensemble']
    if ensemble not in ENSEMBLES:
        raise ProtocolError(f'MD setting ensemble={ensemble!r} is not one of {", ".join(ENSEMBLES)}')
    result['ensemble'] = ensemble
    if result['thermostat'] not in THERMOSTATS:
        raise ProtocolError(f'MD setting thermostat={result["thermostat"]!r} is not one of {", ".join(THERMOSTATS)}')
    if result['barostat'] not in BAROSTATS:
        raise ProtocolError(f'MD setting barostat={result["barostat"]!r} is not one of {", ".join(BAROSTATS)}')
    result['timestep'] = _positive_number(settings, 'timestep')
    result['temperature_damping'] = _positive_number(result, 'temperature_damping')
    result['pressure_damping'] = _positive_number(result, 'pressure_damping')
    result['dump_every'] = _positive_int(result['dump_every'], 'dump_every')
    result['thermo_every'] = _positive_int(
        result['dump_every'] if result['thermo_every'] is None else result['thermo_every'], 'thermo_every'
    )
    result['seed'] = _positive_int(result['seed'], 'seed', minimum=0)
    if not isinstance(result['fail_on_broken_bonds'], bool):
        value = result['fail_on_broken_bonds']
        raise ProtocolError(f'MD setting fail_on_broken_bonds must be true or false, got {value!r}')
    for key in ('initial_temperature', 'max_temperature'):
        value = result[key]
        if value is not None and (not _is_number(value) or float(value) < 0):
            raise ProtocolError(f'MD setting {key} must be null or a temperature >= 0 K, got {value!r}')
        result[key] = None if value is None else float(value)

    schedule = settings['schedule']
    if not isinstance(schedule, list | tuple) or not schedule:
        raise ProtocolError('MD setting schedule must be a non-empty list of stages ({steps: N, temperature: T})')
    result['schedule'] = [
        _validate_stage(stage, index, ensemble, result['timestep']) for index, stage in enumerate(schedule)
    ]
    if ensemble == 'nve' and result['initial_temperature'] is None and result['schedule'][0]['temperature'] is None:
        raise ProtocolError('an nve run needs initial_temperature (K) or a temperature in its first stage')
    return result


def load_md_settings(protocol: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Return the validated settings of ``protocol`` from ``protocols/md.yaml`` with ``overrides`` applied.

    Unknown override keys are refused by the protocol loader; values are then checked by :func:`validate_md_settings`.
    """
    return validate_md_settings(load_protocol('md', protocol, overrides))


def _validated(function: Callable) -> Callable:
    """Return ``function`` of :mod:`aiida_mofal.md.schedule` with the settings validated (and normalised) first."""

    @functools.wraps(function)
    def wrapper(settings: Mapping[str, Any], *args, **kwargs):
        return function(validate_md_settings(settings), *args, **kwargs)

    return wrapper


total_steps = _validated(schedule.total_steps)
stage_boundaries = _validated(schedule.stage_boundaries)
targets_at = _validated(schedule.targets_at)
elapsed_time = _validated(schedule.elapsed_time)
total_time = _validated(schedule.total_time)
max_temperature = _validated(schedule.max_temperature)


def remaining_settings(settings: Mapping[str, Any], completed_steps: int, timestep_factor: float = 1.0) -> dict:
    """Return the validated settings that continue ``settings`` after ``completed_steps`` steps.

    See :func:`aiida_mofal.md.schedule.remaining_settings`: same simulated time, ramp rates and time between frames,
    with a timestep ``timestep_factor`` times shorter (e.g. 0.5 after a blow-up).
    """
    return validate_md_settings(
        schedule.remaining_settings(validate_md_settings(settings), completed_steps, timestep_factor)
    )
