"""The four bulk-modulus methods of ``mofal.eos``: their settings, their volume grids and their analyses.

Methods (SCIENCE.md §8; ``docs/guide/mechanics.md``):

* ``ev`` (0 K): fixed-volume relaxations (shape and positions) on a volume grid, Birch–Murnaghan 3 and Vinet fits.
* ``pv`` (finite T): NPT MD on a pressure grid → ⟨V⟩(P), a 2nd-order Birch–Murnaghan fit of the stable branch,
  P_max the maximum of the P–V curve.
* ``strain`` (finite T, the ZIF paper's finite strain): NVT at V(1 ± δ) around a reference volume → ⟨P⟩(V) →
  B = −V dP/dV.
* ``fluctuations`` (finite T): NσT with a flexible triclinic cell → B = k_B T ⟨V⟩/var(V), the elastic tensor from
  the strain fluctuations, Hill averages.

:func:`validate_method_settings` fills and checks a method's settings before anything is submitted;
``analyse_*`` turn the numbers the runs produced (plain arrays) into JSON-ready records with errors; the
calcfunctions of :mod:`aiida_mofal.calculations.eos` call them on stored nodes.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .elastic import strain_fluctuation_stiffness, volume_fluctuation_bulk_modulus
from .eos import FORMS, fit_energy_volume
from .pressure_volume import finite_difference_bulk_modulus, fit_pressure_volume
from .statistics import block_average

__all__ = (
    'METHODS',
    'METHOD_DEFAULTS',
    'analyse_ev',
    'analyse_fluctuations',
    'analyse_pv',
    'analyse_strain',
    'compare_methods',
    'ev_volume_factors',
    'md_settings_for',
    'mean_with_error',
    'validate_method_settings',
)

METHODS = ('ev', 'pv', 'strain', 'fluctuations')
_MD_COMMON = {'timestep': 0.5, 'temperature_damping': 100.0, 'pressure_damping': 1000.0, 'thermo_every': 10,
              'dump_every': 100, 'equilibration': 0.2, 'seed': 0, 'thermostat': 'nose-hoover'}  # fmt: skip
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    'ev': {'relax_first': True, 'strain': 0.06, 'points': 9, 'volume_factors': None, 'fmax': 0.01,
           'max_steps': 500, 'max_iterations': 5, 'optimizer': 'FIRE', 'allow_unbracketed': False},
    'pv': {**_MD_COMMON, 'temperature': 300.0, 'pressures': [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
           'steps': 200000, 'barostat': 'isotropic'},
    'strain': {**_MD_COMMON, 'temperature': 300.0, 'strain': 0.015, 'points': 3, 'steps': 400000,
               'equilibration': 0.5, 'reference': 'npt', 'reference_steps': 200000},
    'fluctuations': {**_MD_COMMON, 'temperature': 300.0, 'pressure': 0.0, 'steps': 400000, 'dump_every': 20,
                     'barostat': 'triclinic', 'pressure_damping': 500.0},
}  # fmt: skip
"""Defaults at the papers' sizes: ±6 % and 9 volumes (E–V); 100 ps at 0.5 fs per pressure (P–V); 100 ps of NPT for
the reference volume, then 200 ps of NVT per volume of which the first half equilibrates (finite strain, ZIF
paper); 200 ps of NσT (fluctuations). ``equilibration`` is the fraction of each run left out of the averages.
``thermostat`` ``nose-hoover`` (MTK barostat) or ``langevin`` (a Langevin piston, ASE's ``LangevinBAOAB``): the
MTK cell degree of freedom starts at rest and is thermalised only by its own chain over many ``pressure_damping``
times, and its mass scales with N k_B T, so short or low-temperature NPT runs sample ⟨V⟩ better with Langevin
(docs/guide/mechanics.md, "P–V against E–V")."""


def _number(value: Any, name: str, *, positive: bool = False, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f'{name} must be a finite number, got {value!r}')
    if positive and value <= 0:
        raise ValueError(f'{name} must be positive, got {value!r}')
    if minimum is not None and value < minimum:
        raise ValueError(f'{name} must be at least {minimum}, got {value!r}')
    return float(value)


def _integer(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f'{name} must be an integer >= {minimum}, got {value!r}')
    return int(value)


def validate_method_settings(method: str, settings: Mapping[str, Any] | None = None) -> dict:
    """Return the complete settings of ``method`` (defaults filled); refuse unknown keys and bad values.

    :raises ValueError: naming the key and what would be valid.
    """
    if method not in METHODS:
        raise ValueError(f'unknown method {method!r}; choose one of {", ".join(METHODS)}')
    defaults = METHOD_DEFAULTS[method]
    settings = copy.deepcopy(dict(settings or {}))
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise ValueError(f'unknown {method} settings {unknown}; valid keys: {", ".join(defaults)}')
    merged = {**copy.deepcopy(defaults), **settings}
    if method == 'ev':
        merged['strain'] = _number(merged['strain'], 'ev strain', positive=True)
        merged['points'] = _integer(merged['points'], 'ev points', 5)
        merged['max_steps'] = _integer(merged['max_steps'], 'ev max_steps', 1)
        merged['max_iterations'] = _integer(merged['max_iterations'], 'ev max_iterations', 1)
        merged['fmax'] = _number(merged['fmax'], 'ev fmax', positive=True)
        merged['volume_factors'] = ev_volume_factors(merged)
        return merged
    for key in ('timestep', 'temperature_damping', 'pressure_damping', 'temperature'):
        merged[key] = _number(merged[key], f'{method} {key}', positive=True)
    for key in ('steps', 'thermo_every', 'dump_every'):
        merged[key] = _integer(merged[key], f'{method} {key}', 1)
    merged['seed'] = _integer(merged['seed'], f'{method} seed', 0)
    if merged['thermostat'] not in ('nose-hoover', 'langevin'):
        raise ValueError(f"{method} thermostat must be 'nose-hoover' or 'langevin', got {merged['thermostat']!r}")
    fraction = _number(merged['equilibration'], f'{method} equilibration', minimum=0.0)
    if fraction >= 0.9:
        raise ValueError(f'{method} equilibration is the fraction of each run left out; {fraction} leaves too little')
    if merged['steps'] * (1 - fraction) < 8 * merged['thermo_every']:
        raise ValueError(
            f'{method}: {merged["steps"]} steps with thermo_every {merged["thermo_every"]} and equilibration '
            f'{fraction} leave fewer than 8 samples to average; run longer or sample more often'
        )
    if method == 'pv':
        pressures = merged['pressures']
        if not isinstance(pressures, Sequence) or len(pressures) < 3:
            raise ValueError(f'pv pressures must be a list of at least 3 pressures (GPa), got {pressures!r}')
        merged['pressures'] = sorted(_number(p, 'pv pressure') for p in pressures)
        if len(set(merged['pressures'])) != len(merged['pressures']):
            raise ValueError(f'pv pressures repeat a value: {pressures}')
    if method == 'strain':
        merged['strain'] = _number(merged['strain'], 'strain strain', positive=True)
        if merged['strain'] >= 0.2:
            raise ValueError(f'a finite strain of {merged["strain"]} is not small; the ZIF paper uses 0.015')
        merged['points'] = _integer(merged['points'], 'strain points', 2)
        if merged['reference'] not in ('npt', 'input'):
            reference = merged['reference']
            raise ValueError(f"strain reference must be 'npt' (⟨V⟩ of an NPT run) or 'input', got {reference!r}")
        merged['reference_steps'] = _integer(merged['reference_steps'], 'strain reference_steps', 1)
    if method == 'fluctuations':
        merged['pressure'] = _number(merged['pressure'], 'fluctuations pressure')
        if merged['barostat'] != 'triclinic':
            raise ValueError('the strain-fluctuation tensor needs a fully flexible cell: barostat triclinic')
    return merged


def ev_volume_factors(settings: Mapping[str, Any]) -> list[float]:
    """Return the E–V grid as volume factors V/V_ref: ``volume_factors``, else ``points`` evenly in 1 ± ``strain``.

    A grid that stays on one side of the reference volume cannot bracket the minimum of a relaxed reference; it
    is refused unless ``allow_unbracketed`` (then the fit is flagged).
    """
    factors = settings.get('volume_factors')
    if factors is None:
        strain, points = float(settings['strain']), int(settings['points'])
        if strain >= 0.5:
            raise ValueError(f'ev strain {strain} is not a fraction of the volume below 0.5')
        factors = np.linspace(1 - strain, 1 + strain, points).tolist()
    factors = sorted(_number(f, 'ev volume factor', positive=True) for f in factors)
    if len(set(factors)) < 5:
        raise ValueError(f'the E–V grid needs at least 5 distinct volumes, got {factors}')
    if not settings.get('allow_unbracketed') and not factors[0] < 1.0 < factors[-1]:
        raise ValueError(
            f'the E–V grid (V/V_ref from {factors[0]:.4g} to {factors[-1]:.4g}) does not contain the reference '
            'volume, so it cannot bracket the minimum of the relaxed structure; centre it on 1 (or set '
            'allow_unbracketed=true to fit it anyway, flagged)'
        )
    return factors


def md_settings_for(settings: Mapping[str, Any], ensemble: str, temperature: float, pressure: float | None = None,
                    steps: int | None = None, barostat: str = 'isotropic') -> dict:  # fmt: skip
    """Return the MD protocol settings (:mod:`aiida_mofal.md.protocol`) of one run of a method."""
    stage = {'steps': int(steps or settings['steps']), 'temperature': float(temperature)}
    if ensemble == 'npt':
        stage['pressure'] = float(pressure or 0.0)
    return {
        'ensemble': ensemble,
        'thermostat': settings.get('thermostat', 'nose-hoover'),
        'barostat': barostat,
        'timestep': settings['timestep'],
        'temperature_damping': settings['temperature_damping'],
        'pressure_damping': settings['pressure_damping'],
        'thermo_every': settings['thermo_every'],
        'dump_every': settings['dump_every'],
        'seed': settings['seed'],
        'schedule': [stage],
    }


def production(series, steps, equilibration: float) -> np.ndarray:
    """Return the part of ``series`` (sampled at ``steps``) after the first ``equilibration`` of the run."""
    values, steps = np.asarray(series, dtype=float), np.asarray(steps, dtype=float)
    keep = steps >= equilibration * steps.max()
    return values[keep]


def mean_with_error(series, name: str) -> dict:
    """Mean and block-averaged error of a series (Flyvbjerg–Petersen), with its warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        average = block_average(series, name=name)
    return {'mean': average.mean, 'error': average.error, 'correlation_time': average.correlation_time,
            'n_samples': average.n_samples, 'warnings': list(average.warnings)}  # fmt: skip


def analyse_ev(volumes, energies, converged=None, allow_unbracketed: bool = False) -> dict:
    """Fit E(V) with Birch–Murnaghan 3 and Vinet; B0 of the record is Birch–Murnaghan's, the spread of the two added.

    A grid that does not bracket the minimum is fitted and flagged (``bracketed`` false, ``warnings``) when
    ``allow_unbracketed``, and refused (:class:`UnbracketedMinimumError`) otherwise.
    """
    record: dict[str, Any] = {'method': 'ev', 'volumes_A3': list(map(float, volumes)),
                              'energies_eV': list(map(float, energies)), 'fits': {}, 'warnings': []}  # fmt: skip
    if converged is not None and not all(converged):
        record['warnings'].append(f'{len(converged) - sum(map(bool, converged))} relaxation(s) did not converge')
    for form in FORMS:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            fit = fit_energy_volume(volumes, energies, form=form, allow_unbracketed=allow_unbracketed)
        record['fits'][form] = fit.as_dict()
        record['warnings'].extend(f'{form}: {note}' for note in fit.warnings)
    bm, vinet = record['fits']['birch-murnaghan'], record['fits']['vinet']
    record.update(
        B0_GPa=bm['B0_GPa'], B0_GPa_err=bm['B0_GPa_err'], V0_A3=bm['V0_A3'], B0_prime=bm['B0_prime'],
        form_spread_GPa=abs(bm['B0_GPa'] - vinet['B0_GPa']), bracketed=bm['bracketed'] and vinet['bracketed'],
    )  # fmt: skip
    return record


def analyse_pv(pressures, volume_series: Sequence, steps_series: Sequence, equilibration: float,
               mass_amu: float | None = None) -> dict:  # fmt: skip
    """⟨V⟩(P) with block-averaged errors from NPT runs → a 2nd-order Birch–Murnaghan fit of the stable branch, P_max."""
    averages = [mean_with_error(production(v, s, equilibration), f'V at {p} GPa')
                for p, v, s in zip(pressures, volume_series, steps_series)]  # fmt: skip
    volumes = [a['mean'] for a in averages]
    errors = [max(a['error'], 1e-12) for a in averages]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        fit = fit_pressure_volume(volumes, pressures, volume_errors=errors, mass_amu=mass_amu)
    record = fit.as_dict()
    notes = [note for a in averages for note in a['warnings']] + record.pop('warnings')
    return {'method': 'pv', 'pressures_GPa': list(map(float, pressures)), 'volumes_A3': volumes,
            'volumes_A3_err': errors, 'fit': record, 'B0_GPa': record['B0_GPa'], 'B0_GPa_err': record['B0_GPa_err'],
            'V0_A3': record['V0_A3'], 'P_max_GPa': record['P_max_GPa'], 'warnings': notes}  # fmt: skip


def analyse_strain(volumes, pressure_series: Sequence, steps_series: Sequence, equilibration: float,
                   reference_volume: float) -> dict:  # fmt: skip
    """⟨P⟩ with block-averaged errors at fixed volumes → B = −V dP/dV at the reference volume."""
    averages = [mean_with_error(production(p, s, equilibration), f'P at {v:.6g} Å³')
                for v, p, s in zip(volumes, pressure_series, steps_series)]  # fmt: skip
    pressures = [a['mean'] for a in averages]
    errors = [max(a['error'], 1e-12) for a in averages]
    result = finite_difference_bulk_modulus(volumes, pressures, errors, volume=reference_volume).as_dict()
    notes = [note for a in averages for note in a['warnings']]
    return {'method': 'strain', 'volumes_A3': list(map(float, volumes)), 'pressures_GPa': pressures,
            'pressures_GPa_err': errors, 'fit': result, 'B0_GPa': result['B_GPa'], 'B0_GPa_err': result['B_GPa_err'],
            'V0_A3': float(reference_volume), 'warnings': notes}  # fmt: skip


def analyse_fluctuations(cells, steps, volumes, volume_steps, temperature: float, equilibration: float) -> dict:
    """B from the volume fluctuations (thermo volumes) and the elastic tensor and Hill averages (dumped cells)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bulk = volume_fluctuation_bulk_modulus(production(volumes, volume_steps, equilibration), temperature)
        record = {'method': 'fluctuations', 'volume': bulk.as_dict(), 'warnings': list(bulk.warnings)}
        cells = np.asarray(cells, dtype=float)
        kept = cells[np.asarray(steps) >= equilibration * np.max(steps)]
        try:
            elastic = strain_fluctuation_stiffness(kept, temperature)
            record['elastic'] = elastic.as_dict()
            record['warnings'] += [f'elastic tensor: {note}' for note in elastic.warnings]
        except ValueError as exception:
            record['elastic'] = None
            record['warnings'].append(f'no elastic tensor: {exception}')
    record.update(B0_GPa=bulk.b, B0_GPa_err=bulk.b_error, V0_A3=bulk.mean_volume)
    return record


def compare_methods(results: Mapping[str, Mapping[str, Any]], sigmas: float = 2.0) -> dict:
    """Which methods' bulk moduli agree within ``sigmas`` combined standard errors (and by how many σ they differ).

    The E–V error includes the spread of its two forms; finite-T methods also differ from 0 K by thermal softening,
    so a disagreement between ``ev`` and a 300 K method can be physics, not noise.
    """
    values = {}
    for name, record in results.items():
        error = float(record['B0_GPa_err'])
        if name == 'ev':
            error = math.hypot(error, float(record.get('form_spread_GPa', 0.0)))
        values[name] = (float(record['B0_GPa']), error)
    pairs = []
    names = sorted(values)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            (b1, e1), (b2, e2) = values[first], values[second]
            combined = math.hypot(e1, e2)
            distance = abs(b1 - b2) / combined if combined > 0 else math.inf
            pairs.append({'methods': [first, second], 'difference_GPa': b1 - b2, 'sigma': distance,
                          'agree': bool(distance <= sigmas)})  # fmt: skip
    return {
        'B0_GPa': {name: value[0] for name, value in values.items()},
        'B0_GPa_err': {name: value[1] for name, value in values.items()},
        'pairs': pairs,
        'sigmas': sigmas,
        'all_agree': all(pair['agree'] for pair in pairs),
    }
