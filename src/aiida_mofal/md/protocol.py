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

Step counting: stage ``k`` covers steps ``(s_k, s_k + steps_k]`` of the run; frames are dumped at step 0 and
every ``dump_every`` steps (and at the last step). The target at step ``i`` is interpolated linearly inside the
stage that contains it; step 0 is the first stage's start.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from numbers import Real
from typing import Any

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


def total_steps(settings: Mapping[str, Any]) -> int:
    """Return the number of MD steps of the whole schedule."""
    return sum(int(stage['steps']) for stage in settings['schedule'])


def stage_boundaries(settings: Mapping[str, Any]) -> list[tuple[int, int]]:
    """Return ``(first_step, last_step)`` of each stage: stage ``k`` runs steps ``first+1 .. last``."""
    bounds, start = [], 0
    for stage in settings['schedule']:
        bounds.append((start, start + int(stage['steps'])))
        start += int(stage['steps'])
    return bounds


def _interpolate(pair: list[float] | None, fraction: float) -> float | None:
    if pair is None:
        return None
    return pair[0] + (pair[1] - pair[0]) * fraction


def _stage_index(settings: Mapping[str, Any], step: int) -> tuple[int, float]:
    """Return the index of the stage containing ``step`` and the fraction of it done at ``step``."""
    total = total_steps(settings)
    if step < 0 or step > total:
        raise ValueError(f'step {step} is outside the schedule (0..{total})')
    for index, (first, last) in enumerate(stage_boundaries(settings)):
        if step <= last:
            return index, (step - first) / (last - first)
    raise AssertionError('unreachable')  # pragma: no cover


def targets_at(settings: Mapping[str, Any], step: int) -> tuple[float | None, float | None]:
    """Return the target ``(temperature_K, pressure_GPa)`` at ``step`` of a *validated* settings dict.

    Either is ``None`` when the schedule does not set it (an nve run without temperatures, or no pressure).
    """
    settings = validate_md_settings(settings)
    index, fraction = _stage_index(settings, step)
    stage = settings['schedule'][index]
    return _interpolate(stage['temperature'], fraction), _interpolate(stage['pressure'], fraction)


def elapsed_time(settings: Mapping[str, Any], step: int) -> float:
    """Return the simulated time in fs after ``step`` steps (stages may have their own timestep)."""
    settings = validate_md_settings(settings)
    time = 0.0
    for stage, (first, last) in zip(settings['schedule'], stage_boundaries(settings)):
        time += stage['timestep'] * max(0, min(step, last) - first)
    return time


def total_time(settings: Mapping[str, Any]) -> float:
    """Return the simulated time of the whole schedule in fs."""
    return elapsed_time(settings, total_steps(settings))


def max_temperature(settings: Mapping[str, Any]) -> float:
    """Return the temperature (K) above which a run counts as blown up.

    ``max_temperature`` when set; otherwise ``max(3 T_max, T_max + 2000 K)`` with ``T_max`` the highest target (or the
    initial temperature), so that a hot melt at 1500 K may fluctuate but a run that gains thousands of K does not.
    """
    settings = validate_md_settings(settings)
    if settings.get('max_temperature') is not None:
        return float(settings['max_temperature'])
    temperatures = [value for stage in settings['schedule'] for value in (stage['temperature'] or [])]
    if settings.get('initial_temperature') is not None:
        temperatures.append(float(settings['initial_temperature']))
    highest = max(temperatures, default=300.0)
    return max(3.0 * highest, highest + 2000.0)


def remaining_settings(settings: Mapping[str, Any], completed_steps: int, timestep_factor: float = 1.0) -> dict:
    """Return settings that continue a run of ``settings`` after ``completed_steps`` steps.

    The remaining schedule starts at the targets of step ``completed_steps`` (a ramp cut in the middle continues
    from where it was). With ``timestep_factor`` (e.g. 0.5 after a blow-up) every remaining stage gets that much
    shorter timestep and correspondingly more steps, and ``dump_every``/``thermo_every`` scale the same way, so
    that the simulated time, the ramp rates and the time between frames stay those of the original protocol.
    """
    settings = validate_md_settings(settings)
    if not 0 < timestep_factor <= 1:
        raise ValueError(f'timestep_factor must be in (0, 1], got {timestep_factor}')
    total = total_steps(settings)
    if not 0 <= completed_steps < total:
        raise ValueError(f'completed_steps must be in [0, {total}), got {completed_steps}')
    stages = []
    for stage, (first, last) in zip(settings['schedule'], stage_boundaries(settings)):
        if last <= completed_steps:
            continue
        start = max(first, completed_steps)
        fraction = (start - first) / (last - first)
        new = dict(stage)
        for key in ('temperature', 'pressure'):
            if stage[key] is not None:
                new[key] = [_interpolate(stage[key], fraction), stage[key][1]]
        new['steps'] = max(1, round((last - start) / timestep_factor))
        new['timestep'] = stage['timestep'] * timestep_factor
        stages.append(new)
    result = copy.deepcopy(settings)
    result['schedule'] = stages
    result['timestep'] = settings['timestep'] * timestep_factor
    result['dump_every'] = max(1, round(settings['dump_every'] / timestep_factor))
    result['thermo_every'] = max(1, round(settings['thermo_every'] / timestep_factor))
    return validate_md_settings(result)
