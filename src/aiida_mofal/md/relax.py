"""Settings of a MACE relaxation (``mofal.relax``): what moves, the optimiser, the convergence and the step limit.

Three modes, as ASE does them (``calculations/scripts/relax_run.py``):

* ``positions``: the atoms at a fixed cell;
* ``shape``: the atoms and the cell's shape at a fixed volume (``FrechetCellFilter(constant_volume=True)``): the
  relaxation at each volume of an E–V grid;
* ``full``: the atoms and the whole cell at ``pressure`` (GPa; ``FrechetCellFilter(scalar_pressure=...)``).

``fmax`` (eV/Å) bounds the largest force and, with a cell filter, the virial per atom (ASE's convention: the cell's
generalised force is the virial divided by the number of atoms, so 0.01 eV/Å on a 456-atom UiO-66 cell is a
residual stress of about 0.01 · 456 / V ≈ 8e-4 eV/Å³ ≈ 0.1 GPa). ``max_steps`` is per job: a relaxation that hits
it stops unconverged with its geometry, and ``mofal.relax.base`` continues it from there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ['MODES', 'OPTIMIZERS', 'RELAX_DEFAULTS', 'validate_relax_settings']

MODES = ('positions', 'shape', 'full')
OPTIMIZERS = ('FIRE', 'BFGS', 'LBFGS')
RELAX_DEFAULTS: dict[str, Any] = {
    'mode': 'full',
    'optimizer': 'FIRE',
    'fmax': 0.01,
    'max_steps': 500,
    'pressure': 0.0,
}
"""Defaults of :func:`validate_relax_settings`: FIRE (robust with cell filters), 0.01 eV/Å, 500 steps, 0 GPa."""


def validate_relax_settings(settings: Mapping[str, Any] | None) -> dict:
    """Return complete relaxation settings; unknown keys and bad values raise a ``ValueError`` naming them."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(RELAX_DEFAULTS))
    if unknown:
        raise ValueError(f'unknown relaxation settings {unknown}; valid keys: {", ".join(RELAX_DEFAULTS)}')
    merged = {**RELAX_DEFAULTS, **settings}
    if merged['mode'] not in MODES:
        raise ValueError(f'relaxation mode {merged["mode"]!r} is not one of {", ".join(MODES)}')
    if merged['optimizer'] not in OPTIMIZERS:
        raise ValueError(f'optimizer {merged["optimizer"]!r} is not one of {", ".join(OPTIMIZERS)}')
    fmax = merged['fmax']
    if isinstance(fmax, bool) or not isinstance(fmax, int | float) or not math.isfinite(fmax) or fmax <= 0:
        raise ValueError(f'fmax must be a positive number of eV/Å, got {fmax!r}')
    steps = merged['max_steps']
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f'max_steps must be an integer >= 1, got {steps!r}')
    pressure = merged['pressure']
    if isinstance(pressure, bool) or not isinstance(pressure, int | float) or not math.isfinite(pressure):
        raise ValueError(f'pressure must be a finite number of GPa, got {pressure!r}')
    if merged['mode'] != 'full' and pressure != 0:
        raise ValueError(f'a pressure ({pressure} GPa) acts only in mode full; mode {merged["mode"]} keeps the volume')
    return {**merged, 'fmax': float(fmax), 'pressure': float(pressure)}
