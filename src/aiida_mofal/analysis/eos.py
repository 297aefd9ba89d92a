"""Equations of state: E(V) fits at 0 K, P(V) fits at finite temperature, P_max and finite-strain bulk moduli.

Units: volumes Å³, energies eV, pressures and moduli GPa, masses amu, densities g/cm³.

- :func:`fit_energy_volume`: Birch–Murnaghan 3rd order or Vinet E(V) by scipy least squares → V0, E0, B0, B0′
  with standard errors from the Jacobian at the optimum (covariance s² (JᵀJ)⁻¹, s² the residual variance).
  A grid whose lowest energy lies at its first or last volume does not bracket a minimum: the fit is refused
  (:class:`UnbracketedMinimumError`) unless asked for anyway, when it is flagged. A fitted V0 outside the grid
  is flagged.
- :func:`eos_energy`, :func:`eos_pressure`: the forms, shared with the P(V) fits of
  :mod:`aiida_mofal.analysis.pressure_volume` (P_max, spinodal, finite strain).

All functions take plain arrays, so that calcfunctions can call them on arrays taken from stored nodes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import constants
from scipy.optimize import least_squares

from .records import unit_record

__all__ = (
    'EV_PER_A3_IN_GPA',
    'FORMS',
    'EnergyVolumeFit',
    'MechanicalInstabilityError',
    'UnbracketedMinimumError',
    'density_g_cm3',
    'eos_energy',
    'eos_pressure',
    'fit_energy_volume',
    'parse_energy_volume_points',
)

#: 1 eV/Å³ in GPa
EV_PER_A3_IN_GPA = constants.e * 1e21
#: g/cm³ per amu/Å³
_AMU_PER_A3_IN_G_CM3 = constants.physical_constants['atomic mass constant'][0] * 1e27
#: the E(V) forms (4 parameters: E0, B0, B0′, V0); P(V) also takes 'birch-murnaghan-2' (B0′ = 4)
FORMS = ('birch-murnaghan', 'vinet')
#: record keys (with their units) of the equation-of-state parameters; see :func:`.records.unit_record`
EOS_KEYS = {'v0': 'V0_A3', 'e0': 'E0_eV', 'b0': 'B0_GPa', 'b0_prime': 'B0_prime', 'rho0': 'rho0_g_cm3'}


class UnbracketedMinimumError(ValueError):
    """The volume grid does not bracket an energy minimum, so V0 would be an extrapolation."""


class MechanicalInstabilityError(ValueError):
    """Pressure rises with volume (dP/dV > 0): the points lie on an unstable branch, B would be negative."""


def eos_energy(form: str, volumes, e0: float, b0: float, b0_prime: float, v0: float) -> np.ndarray:
    """E(V) in eV of an equation of state; ``b0`` in eV/Å³."""
    v = np.asarray(volumes, dtype=float)
    if form == 'birch-murnaghan':
        strain = (v0 / v) ** (2.0 / 3.0) - 1.0
        return e0 + 9.0 * v0 * b0 / 16.0 * (strain**3 * b0_prime + strain**2 * (6.0 - 4.0 * (strain + 1.0)))
    if form == 'vinet':
        x = (v / v0) ** (1.0 / 3.0)
        xi = 1.5 * (b0_prime - 1.0)
        return e0 + 9.0 * b0 * v0 / xi**2 * (1.0 + (xi * (1.0 - x) - 1.0) * np.exp(xi * (1.0 - x)))
    raise ValueError(f'unknown equation of state {form!r}; choose one of {", ".join(FORMS)}')


def eos_pressure(form: str, volumes, b0: float, b0_prime: float, v0: float) -> np.ndarray:
    """P(V) = −dE/dV of an equation of state, in the unit of ``b0``; 'birch-murnaghan-2' ignores ``b0_prime``."""
    v = np.asarray(volumes, dtype=float)
    if form in ('birch-murnaghan', 'birch-murnaghan-2'):
        eta = (v0 / v) ** (1.0 / 3.0)
        order3 = 0.0 if form == 'birch-murnaghan-2' else 0.75 * (b0_prime - 4.0) * (eta**2 - 1.0)
        return 1.5 * b0 * (eta**7 - eta**5) * (1.0 + order3)
    if form == 'vinet':
        x = (v / v0) ** (1.0 / 3.0)
        return 3.0 * b0 * (1.0 - x) / x**2 * np.exp(1.5 * (b0_prime - 1.0) * (1.0 - x))
    raise ValueError(f'unknown equation of state {form!r}; choose one of {", ".join((*FORMS, "birch-murnaghan-2"))}')


def density_g_cm3(mass_amu: float, volume_a3: float) -> float:
    """Density in g/cm³ of ``mass_amu`` in ``volume_a3``."""
    return float(_AMU_PER_A3_IN_G_CM3 * mass_amu / volume_a3)


def sorted_points(volumes, values, what: str, minimum: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate points; return them as float arrays sorted by volume, and the sorting order."""
    v, y = np.asarray(volumes, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    if v.size != y.size:
        raise ValueError(f'{v.size} volumes but {y.size} values of the {what}: give one {what} per volume')
    for name, array in (('volume', v), (what, y)):
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(f'point {bad[0] + 1}: the {name} is not a finite number ({array[bad[0]]}); drop it')
    if np.any(v <= 0):
        raise ValueError(f'point {int(np.argmax(v <= 0)) + 1}: volume {v[v <= 0][0]} Å³ is not positive')
    if np.unique(v).size < minimum:
        raise ValueError(
            f'{np.unique(v).size} distinct volumes; this fit and its errors need at least {minimum}: add volumes'
        )
    order = np.argsort(v, kind='stable')
    return v[order], y[order], order


def fit_covariance(result, dof: int, scale: float | None) -> np.ndarray:
    """Parameter covariance from the Jacobian; ``scale`` None: the residual variance RSS/dof."""
    jac = result.jac
    try:
        inverse = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return np.full((jac.shape[1], jac.shape[1]), np.inf)
    variance = float(np.sum(result.fun**2) / dof) if scale is None else scale
    return inverse * variance


@dataclass
class EnergyVolumeFit:
    """An E(V) equation of state with its standard errors, residuals and flags."""

    form: str
    v0: float  #: Å³
    e0: float  #: eV
    b0: float  #: GPa
    b0_prime: float
    v0_error: float
    e0_error: float
    b0_error: float
    b0_prime_error: float
    volumes: np.ndarray  #: the points fitted (sorted by volume)
    energies: np.ndarray
    residuals: np.ndarray  #: fit − data, eV
    warnings: list[str] = field(default_factory=list)

    @property
    def rms_residual(self) -> float:
        """Root-mean-square residual in eV."""
        return float(np.sqrt(np.mean(self.residuals**2)))

    @property
    def bracketed(self) -> bool:
        """Whether the fitted V0 lies inside the volume grid."""
        return bool(self.volumes[0] <= self.v0 <= self.volumes[-1])

    def energy(self, volumes) -> np.ndarray:
        """Evaluate the fitted E(V), in eV."""
        return eos_energy(self.form, volumes, self.e0, self.b0 / EV_PER_A3_IN_GPA, self.b0_prime, self.v0)

    def pressure(self, volumes) -> np.ndarray:
        """Evaluate the fitted P(V) = −dE/dV, in GPa."""
        return eos_pressure(self.form, volumes, self.b0, self.b0_prime, self.v0)

    def as_dict(self) -> dict:
        """JSON-ready record; the keys carry their units."""
        return {
            **unit_record(self, EOS_KEYS, ('form', 'v0', 'e0', 'b0', 'b0_prime')),
            'n_points': int(self.volumes.size),
            'volume_range_A3': [float(self.volumes[0]), float(self.volumes[-1])],
            'rms_residual_eV': self.rms_residual,
            'residuals_eV': self.residuals.tolist(),
            'bracketed': self.bracketed,
            'warnings': list(self.warnings),
        }


def fit_energy_volume(
    volumes, energies, form: str = 'birch-murnaghan', allow_unbracketed: bool = False
) -> EnergyVolumeFit:
    """Fit E(V) points (Å³, eV) with a 3rd-order Birch–Murnaghan or a Vinet equation of state.

    Needs 5 distinct volumes (4 parameters and a residual variance for their errors). The start is the parabola
    through the points. Refuses (:class:`UnbracketedMinimumError`) a grid whose lowest energy is at its smallest
    or largest volume unless ``allow_unbracketed``, then fits and flags it; refuses concave energies always.
    Flags (``warnings`` of the result and a Python warning): V0 outside the grid, no convergence.
    """
    if form not in FORMS:
        raise ValueError(f'unknown equation of state {form!r}; choose one of {", ".join(FORMS)}')
    v, e, _ = sorted_points(volumes, energies, 'energy', minimum=5)
    notes = []
    lowest = int(np.argmin(e))
    if lowest in (0, v.size - 1):
        side, fix = ('smallest', 'smaller') if lowest == 0 else ('largest', 'larger')
        message = (
            f'the lowest energy is at the {side} volume of the grid ({v[lowest]:.6g} Å³): the grid does not '
            f'bracket a minimum, V0 would be extrapolated; add {fix} volumes'
        )
        if not allow_unbracketed:
            raise UnbracketedMinimumError(message)
        notes.append(message)
    v_ref, e_ref = float(v[lowest]), float(e[lowest])
    x, y = v / v_ref, (e - e_ref) / v_ref  # reduced units: parameters of order one, B0 in eV/Å³
    curvature, slope, _ = np.polyfit(x, y, 2)
    if curvature <= 0:
        raise UnbracketedMinimumError(
            'the energies are not convex in the volume (the parabola through them opens downwards): there is '
            'no minimum to fit; check the relaxations or move the grid to the minimum'
        )
    x0 = -slope / (2.0 * curvature)
    start = [float(np.polyval([curvature, slope, 0.0], x0)), float(2.0 * curvature * x0), 4.0, float(x0)]

    def residuals(p):
        return eos_energy(form, x, p[0], p[1], p[2], p[3]) - y

    result = least_squares(residuals, start, x_scale='jac', method='lm', xtol=1e-14, ftol=1e-14, gtol=1e-14)
    if not result.success:
        notes.append(f'the least-squares fit did not converge: {result.message}')
    errors = np.sqrt(np.abs(np.diag(fit_covariance(result, v.size - 4, None))))
    e0, b0, b0_prime, x_min = result.x
    fit = EnergyVolumeFit(
        form=form,
        v0=float(x_min * v_ref),
        e0=float(e0 * v_ref + e_ref),
        b0=float(b0 * EV_PER_A3_IN_GPA),
        b0_prime=float(b0_prime),
        v0_error=float(errors[3] * v_ref),
        e0_error=float(errors[0] * v_ref),
        b0_error=float(errors[1] * EV_PER_A3_IN_GPA),
        b0_prime_error=float(errors[2]),
        volumes=v,
        energies=e,
        residuals=result.fun * v_ref,
        warnings=notes,
    )
    if not fit.bracketed:
        notes.append(f'the fitted V0 = {fit.v0:.6g} Å³ lies outside the grid [{v[0]:.6g}, {v[-1]:.6g}] Å³')
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return fit


def parse_energy_volume_points(text: str, source: str = 'POINTS') -> tuple[np.ndarray, np.ndarray]:
    """Volumes (Å³) and energies (eV) from two columns separated by a comma or by spaces.

    Blank lines and lines starting with ``#`` are skipped; the first other line may be a header. Anything else
    that is not two finite numbers is refused with its line number and the fix.
    """
    volumes, energies, seen_first = [], [], False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        fields = [f.strip() for f in line.split(',')] if ',' in line else line.split()
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not seen_first:  # a header
                seen_first = True
                continue
            bad = next(f for f in fields if not _is_float(f))
            raise ValueError(
                f'{source}, line {number}: {bad!r} is not a number ({line!r}); only the first line may be a header: '
                'fix the value or delete the line'
            ) from None
        seen_first = True
        if len(values) != 2:
            raise ValueError(
                f'{source}, line {number}: {len(values)} column(s) ({line!r}); give two, the volume in Å³ and the '
                'energy in eV, separated by a comma or spaces'
            )
        if not all(np.isfinite(values)):
            raise ValueError(
                f'{source}, line {number}: {line!r} holds a value that is not a finite number; drop the point '
                '(a failed relaxation?)'
            )
        volumes.append(values[0])
        energies.append(values[1])
    if not volumes:
        raise ValueError(f'{source} holds no points; give lines "volume, energy" (Å³, eV)')
    return np.asarray(volumes), np.asarray(energies)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
