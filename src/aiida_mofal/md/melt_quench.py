"""The melt-quench protocol (Castel & Coudert, SCIENCE.md §7) as five MD stages, and its checks before submission.

The protocol is written in the paper's terms, ``protocols/melt_quench.yaml``: temperatures (K), a heating/cooling
rate (K/ps), durations (ps), timesteps (fs). :func:`stage_settings` turns it into the settings of the MD protocol
language (:mod:`aiida_mofal.md.protocol`), one settings dict per stage, so that every stage runs as its own
restartable MD segment and is checked on its own:

==============  ==============================================================
``equilibrate`` ``equilibration`` ps at ``low_temperature``
``heat``        ramp to ``max_temperature`` at ``rate``
``plateau``     ``plateau`` ps at ``max_temperature`` (skipped when 0)
``quench``      ramp back to ``low_temperature`` at ``rate``
``measure``     ``final`` ps at ``low_temperature``: equilibration and the frames the analysis reads
==============  ==============================================================

Parts of the schedule above ``hot_above`` (1500 K) run with ``hot_timestep`` (0.25 fs), as the paper does: a ramp
that crosses it is split into two sub-stages of one MD segment. Frames are kept every ``frame_every`` fs (the
integrity check reads them) and every ``measure_frame_every`` fs in the last stage.

Pure (no AiiDA): the work chain, the command line and the tests share it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

from aiida_mofal.md.protocol import validate_md_settings
from aiida_mofal.protocols import ProtocolError, load_protocol

__all__ = (
    'MAX_TEMPERATURE_LIMIT',
    'STAGES',
    'check_metal_ligand_pairs',
    'fallback_parameters',
    'load_melt_quench_parameters',
    'stage_settings',
    'supercell_size',
    'total_steps',
    'validate_melt_quench_parameters',
)

STAGES = ('equilibrate', 'heat', 'plateau', 'quench', 'measure')
MAX_TEMPERATURE_LIMIT = 4000.0
"""K. No MOF linker survives this and no MLP of these papers was trained near it: a higher T_max is a unit slip."""
MAX_TOTAL_STEPS = 50_000_000
"""A schedule longer than this is a unit slip too (a rate in K/fs, durations in fs): the paper's is 760,000 steps."""

_NUMBERS = {
    'low_temperature': 'K',
    'max_temperature': 'K',
    'rate': 'K/ps',
    'equilibration': 'ps',
    'plateau': 'ps',
    'final': 'ps',
    'timestep': 'fs',
    'hot_timestep': 'fs',
    'hot_above': 'K',
    'temperature_damping': 'fs',
    'frame_every': 'fs',
    'measure_frame_every': 'fs',
    'thermo_every': 'fs',
    'cutoff': 'Å',
}
_ZERO_ALLOWED = ('equilibration', 'plateau')


def _number(parameters: Mapping, key: str) -> float:
    value = parameters[key]
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(float(value)):
        raise ProtocolError(f'melt-quench parameter {key!r} must be a number in {_NUMBERS[key]}, got {value!r}')
    value = float(value)
    if value < 0 or (value == 0 and key not in _ZERO_ALLOWED):
        least = '>= 0' if key in _ZERO_ALLOWED else '> 0'
        raise ProtocolError(f'melt-quench parameter {key!r} must be {least} {_NUMBERS[key]}, got {value!r}')
    return value


def validate_melt_quench_parameters(parameters: Mapping[str, Any]) -> dict:
    """Return a checked copy of melt-quench ``parameters`` (the keys of ``protocols/melt_quench.yaml``).

    :raises ProtocolError: naming the key, the unit and what would be valid: a T_max above
        :data:`MAX_TEMPERATURE_LIMIT` or not above the low temperature, timesteps that are not fs-sized, a schedule
        of more than :data:`MAX_TOTAL_STEPS` steps (units slipped), a fallback with unknown keys.
    """
    defaults = load_protocol('melt_quench', None)
    unknown = sorted(set(parameters) - set(defaults) - {'description', 'protocol'})
    if unknown:
        raise ProtocolError(f'unknown melt-quench parameters {unknown}; valid keys: {", ".join(sorted(defaults))}')
    result = {**copy.deepcopy(defaults), **copy.deepcopy(dict(parameters))}
    for key in _NUMBERS:
        result[key] = _number(result, key)
    low, high = result['low_temperature'], result['max_temperature']
    if high > MAX_TEMPERATURE_LIMIT:
        raise ProtocolError(
            f'max_temperature {high:g} K is above {MAX_TEMPERATURE_LIMIT:g} K: temperatures are in kelvin (the paper '
            'melts ZIF-4 at 1500 K; 1400-1900 K is the useful range). Is the value in the wrong units?'
        )
    if high <= low:
        raise ProtocolError(f'max_temperature ({high:g} K) must be above low_temperature ({low:g} K)')
    if result['timestep'] > 5.0 or result['hot_timestep'] > result['timestep']:
        raise ProtocolError(
            f'timestep ({result["timestep"]:g} fs) must be at most 5 fs and hot_timestep '
            f'({result["hot_timestep"]:g} fs) at most the timestep: timesteps are in fs (the paper: 0.5 and 0.25)'
        )
    for key in ('seed',):
        if isinstance(result[key], bool) or not isinstance(result[key], int) or result[key] < 0:
            raise ProtocolError(f'melt-quench parameter {key!r} must be an integer >= 0, got {result[key]!r}')
    blowup = result['blowup_temperature']
    if blowup is not None and (isinstance(blowup, bool) or not isinstance(blowup, Real) or blowup <= high):
        raise ProtocolError(f'blowup_temperature must be null or a temperature above max_temperature, got {blowup!r}')
    if not isinstance(result['fail_on_formed'], bool):
        raise ProtocolError(f'fail_on_formed must be true or false, got {result["fail_on_formed"]!r}')
    for key in ('metal', 'ligand', 'pairs', 'thermostat'):
        if not isinstance(result[key], str) or not result[key]:
            raise ProtocolError(f'melt-quench parameter {key!r} must be a non-empty string, got {result[key]!r}')
    fallback = result['fallback']
    if fallback is not None:
        if not isinstance(fallback, Mapping) or not fallback:
            raise ProtocolError(f'fallback must be null or a mapping of parameters to replace, got {fallback!r}')
        bad = sorted(set(fallback) - set(_NUMBERS) - {'seed'})
        if bad:
            raise ProtocolError(f'fallback may replace only numeric parameters ({", ".join(_NUMBERS)}); got {bad}')
        validate_melt_quench_parameters({**{k: v for k, v in result.items() if k != 'fallback'}, **fallback,
                                         'fallback': None})  # fmt: skip
        result['fallback'] = dict(fallback)
    steps = total_steps(result)
    if steps > MAX_TOTAL_STEPS:
        raise ProtocolError(
            f'this schedule needs {steps:,} MD steps (more than {MAX_TOTAL_STEPS:,}): rate is in K/ps and durations '
            f'in ps (rate {result["rate"]:g} K/ps, plateau {result["plateau"]:g} ps, final {result["final"]:g} ps)'
        )
    return result


def load_melt_quench_parameters(protocol: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Return the validated parameters of ``protocol`` (``melt_quench`` or ``smoke``) with ``overrides`` applied."""
    return validate_melt_quench_parameters(load_protocol('melt_quench', protocol, overrides, free_form=('fallback',)))


def fallback_parameters(parameters: Mapping[str, Any]) -> dict | None:
    """Return the parameters of the fallback run (``None`` when the protocol has none); it has no fallback itself."""
    if parameters.get('fallback') is None:
        return None
    return validate_melt_quench_parameters({**dict(parameters), **parameters['fallback'], 'fallback': None})


def _steps(duration_fs: float, timestep: float) -> int:
    return max(1, round(duration_fs / timestep))


def _ramp(start: float, end: float, parameters: Mapping) -> list[dict]:
    """Sub-stages of a linear ramp at ``rate``, split where it crosses ``hot_above`` (there the timestep changes)."""
    rate, hot = parameters['rate'] / 1000.0, parameters['hot_above']  # K/fs
    low, high = min(start, end), max(start, end)
    points = [start, end]
    if low < hot < high:
        points = [start, hot, end]
    stages = []
    for a, b in zip(points[:-1], points[1:], strict=False):
        timestep = parameters['hot_timestep'] if max(a, b) > hot else parameters['timestep']
        stages.append({'steps': _steps(abs(b - a) / rate, timestep), 'temperature': [a, b], 'timestep': timestep})
    return stages


def _hold(temperature: float, duration_ps: float, parameters: Mapping) -> list[dict]:
    timestep = parameters['hot_timestep'] if temperature > parameters['hot_above'] else parameters['timestep']
    return [{'steps': _steps(duration_ps * 1000.0, timestep), 'temperature': temperature, 'timestep': timestep}]


def _schedules(parameters: Mapping) -> dict[str, list[dict]]:
    low, high = parameters['low_temperature'], parameters['max_temperature']
    schedules = {
        'equilibrate': _hold(low, parameters['equilibration'], parameters) if parameters['equilibration'] else [],
        'heat': _ramp(low, high, parameters),
        'plateau': _hold(high, parameters['plateau'], parameters) if parameters['plateau'] else [],
        'quench': _ramp(high, low, parameters),
        'measure': _hold(low, parameters['final'], parameters),
    }
    return {name: stages for name, stages in schedules.items() if stages}


def total_steps(parameters: Mapping[str, Any]) -> int:
    """Return the MD steps of the whole melt-quench (all stages)."""
    return sum(stage['steps'] for stages in _schedules(parameters).values() for stage in stages)


def stage_settings(parameters: Mapping[str, Any], seed: int | None = None) -> dict[str, dict]:
    """Return the validated MD settings of every stage, in order (``equilibrate``, ``heat``, ..., ``measure``).

    ``seed`` (default: the parameters' ``seed``) sets the initial velocities of the first stage; the next stages
    continue from the previous one's restart state, velocities and thermostat included. ``fail_on_broken_bonds`` is
    off in the stages: the work chain checks each stage against the crystal itself (``stage_integrity``).
    """
    parameters = validate_melt_quench_parameters(parameters)
    result = {}
    for name, schedule in _schedules(parameters).items():
        base = parameters['timestep']
        frames = parameters['measure_frame_every' if name == 'measure' else 'frame_every']
        result[name] = validate_md_settings({
            'protocol': f'melt_quench.{name}',
            'ensemble': 'nvt',
            'thermostat': parameters['thermostat'],
            'timestep': base,
            'temperature_damping': parameters['temperature_damping'],
            'schedule': schedule,
            'dump_every': _steps(frames, base),
            'thermo_every': _steps(parameters['thermo_every'], base),
            'seed': parameters['seed'] if seed is None else int(seed),
            'fail_on_broken_bonds': False,
            'max_temperature': parameters['blowup_temperature'],
        })  # fmt: skip
    return result


def check_metal_ligand_pairs(atoms, metal: str, ligand: str, cutoff: float) -> int:
    """Return the number of metal–ligand contacts within ``cutoff`` Å; refuse a structure that has none.

    A ZIF melt-quench is judged by its Zn–N network (coordination, N–Zn–N angles, rings): a structure without such
    contacts is the wrong structure (or the wrong protocol), better said before hours of MD than after.

    :raises ValueError: naming the elements the structure has and what to change.
    """
    from ase.neighborlist import neighbor_list

    symbols = set(atoms.get_chemical_symbols())
    missing = [element for element in (metal, ligand) if element not in symbols]
    if missing:
        raise ValueError(
            f'the structure ({atoms.get_chemical_formula()}) has no {" and no ".join(missing)}: this melt-quench '
            f'protocol is for {metal}-{ligand} networks (ZIFs); give a ZIF, or set metal/ligand to the network of '
            'this structure'
        )
    first, second = neighbor_list('ij', atoms, cutoff)
    symbols_array = atoms.get_chemical_symbols()
    contacts = sum(1 for i, j in zip(first, second, strict=True) if symbols_array[i] == metal
                   and symbols_array[j] == ligand)  # fmt: skip
    if not contacts:
        raise ValueError(
            f'the structure has {metal} and {ligand} but no {metal}-{ligand} pair within {cutoff:g} Å: not a '
            f'{metal}-{ligand} network (a wrong cell or a guest molecule?); the analysis would have no coordination'
        )
    return contacts


def supercell_size(value: Sequence[int]) -> list[int]:
    """Return a checked ``[na, nb, nc]`` repetition (positive integers)."""
    values = list(value)
    if len(values) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in values):
        raise ValueError(f'supercell must be three positive integers like [2, 2, 2], got {value!r}')
    return values
