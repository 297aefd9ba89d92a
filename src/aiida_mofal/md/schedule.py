"""Schedule arithmetic of the MD protocol language: stage bounds, targets at a step, checkpoints, restarts.

Every function takes a *normalised* settings dict, the output of
:func:`aiida_mofal.md.protocol.validate_md_settings` (every stage with its own ``timestep`` and ``temperature`` /
``pressure`` as ``[start, end]`` pairs or ``None``); :mod:`aiida_mofal.md.protocol` exposes the same functions with
validation in front. Pure on purpose (no import beyond the standard library): the remote MD driver runs a copy of
this module, so the remote and the work chains count steps, ramps and restarts the same way.

Step counting: stage ``k`` covers steps ``(s_k, s_k + steps_k]``; step 0 is the first stage's start. The target at
step ``i`` is interpolated linearly inside the stage that contains it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = (
    'checkpoints',
    'elapsed_time',
    'initial_temperature',
    'max_temperature',
    'remaining_settings',
    'stage_at',
    'stage_boundaries',
    'stage_targets',
    'targets_at',
    'total_steps',
    'total_time',
)


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
    return None if pair is None else pair[0] + (pair[1] - pair[0]) * fraction


def stage_targets(stage: Mapping[str, Any], first: int, last: int, step: int) -> tuple[float | None, float | None]:
    """Return the ``(temperature K, pressure GPa)`` targets of ``stage`` (bounds ``first``, ``last``) at ``step``."""
    fraction = (step - first) / (last - first)
    return _interpolate(stage['temperature'], fraction), _interpolate(stage['pressure'], fraction)


def stage_at(settings: Mapping[str, Any], step: int) -> int:
    """Return the index of the stage that contains ``step`` (step 0 and a stage's last step belong to it)."""
    total = total_steps(settings)
    if step < 0 or step > total:
        raise ValueError(f'step {step} is outside the schedule (0..{total})')
    return next(index for index, (_, last) in enumerate(stage_boundaries(settings)) if step <= last)


def targets_at(settings: Mapping[str, Any], step: int) -> tuple[float | None, float | None]:
    """Return the target ``(temperature_K, pressure_GPa)`` at ``step``; ``None`` where the schedule sets none."""
    index = stage_at(settings, step)
    first, last = stage_boundaries(settings)[index]
    return stage_targets(settings['schedule'][index], first, last, step)


def elapsed_time(settings: Mapping[str, Any], step: int) -> float:
    """Return the simulated time in fs after ``step`` steps (stages may have their own timestep)."""
    return sum(
        stage['timestep'] * max(0, min(step, last) - first)
        for stage, (first, last) in zip(settings['schedule'], stage_boundaries(settings))
    )


def total_time(settings: Mapping[str, Any]) -> float:
    """Return the simulated time of the whole schedule in fs."""
    return elapsed_time(settings, total_steps(settings))


def checkpoints(settings: Mapping[str, Any]) -> list[int]:
    """Return the steps at which a run is checked and recorded: the thermo and dump intervals and stage ends."""
    total = total_steps(settings)
    points = set(range(0, total + 1, settings['thermo_every'])) | set(range(0, total + 1, settings['dump_every']))
    return sorted(points | {last for _, last in stage_boundaries(settings)})


def initial_temperature(settings: Mapping[str, Any]) -> float:
    """Return the temperature of the initial velocities: ``initial_temperature`` or the first stage's start."""
    if settings.get('initial_temperature') is not None:
        return float(settings['initial_temperature'])
    return float((settings['schedule'][0]['temperature'] or [0.0])[0])


def max_temperature(settings: Mapping[str, Any]) -> float:
    """Return the temperature (K) above which a run counts as blown up.

    ``max_temperature`` when set; otherwise ``max(3 T_max, T_max + 2000 K)`` with ``T_max`` the highest target (or the
    initial temperature), so that a hot melt at 1500 K may fluctuate but a run that gains thousands of K does not.
    """
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
    result = copy.deepcopy(dict(settings))
    result['schedule'] = stages
    result['timestep'] = settings['timestep'] * timestep_factor
    result['dump_every'] = max(1, round(settings['dump_every'] / timestep_factor))
    result['thermo_every'] = max(1, round(settings['thermo_every'] / timestep_factor))
    return result
