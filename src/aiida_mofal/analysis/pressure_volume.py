"""P–V equations of state at finite temperature: the stable branch, P_max, the spinodal, finite-strain moduli.

Units: volumes Å³, pressures and moduli GPa, masses amu, densities g/cm³.

- :func:`fit_pressure_volume`: a P(V) fit (2nd-order Birch–Murnaghan by default) of the *well-behaved region*
  (:func:`stable_branch`) → B0, V0, ρ0; P_max, the loss-of-crystallinity pressure, as the maximum of the P–V
  curve (cluster paper §4.5); negative pressures beyond the spinodal reported.
- :func:`finite_difference_bulk_modulus`: B = −V dP/dV from ⟨P⟩ at a few fixed volumes (the ZIF paper's finite
  strain, volumes V(1 ± 1.5 %), :func:`strain_volumes`), the error propagated from the pressure errors.

Plain arrays in, so that calcfunctions can call them on ⟨V⟩(P) or ⟨P⟩(V) taken from stored MD thermo arrays.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from .eos import EOS_KEYS, FORMS, MechanicalInstabilityError, density_g_cm3, eos_pressure, fit_covariance, sorted_points
from .records import unit_record

__all__ = (
    'FiniteStrainBulkModulus',
    'PressureVolumeFit',
    'StableBranch',
    'finite_difference_bulk_modulus',
    'fit_pressure_volume',
    'stable_branch',
    'strain_volumes',
)


@dataclass
class StableBranch:
    """Where a P–V curve is mechanically stable (dP/dV < 0) and where it is not; indices into sorted points."""

    start: int  #: first point of the stable run (the compressed end)
    stop: int  #: last point of the stable run (the expanded end), inclusive
    fitted: np.ndarray  #: the indices fitted: the run without its turning points
    p_max_index: int  #: the maximum of the P–V curve on the compressed side of the stable run
    p_max_is_lower_bound: bool  #: no turnover at the smallest volume: P_max is at least this
    spinodal_index: int | None  #: the minimum (most negative pressure) at the expanded end, if the curve turns
    collapsed: np.ndarray  #: indices at smaller volumes than P_max (the unstable, collapsing branch)
    beyond_spinodal: np.ndarray  #: indices at larger volumes than the spinodal


def stable_branch(volumes, pressures) -> StableBranch:
    """Find the well-behaved region of P–V points sorted by volume.

    Rule: neighbouring points form a stable pair when the pressure falls as the volume grows (dP/dV < 0). The
    well-behaved region is the contiguous run of stable pairs that contains the zero crossing of the pressure
    (the equilibrium volume); without one, the longest run. The run ends at turning points: at its compressed end
    the maximum of the P–V curve (P_max, the loss of crystallinity; when the run reaches the smallest volume, P_max
    is only a lower bound), at its expanded end the spinodal (the most negative pressure the framework sustains).
    The fit leaves these turning points out: the true extremum lies within one grid step of each, so the point
    may belong to either branch, and an equation of state has no extremum to describe it.
    """
    v, p = np.asarray(volumes, dtype=float), np.asarray(pressures, dtype=float)
    stable = np.diff(p) < 0
    runs, i = [], 0
    while i < stable.size:
        if stable[i]:
            j = i
            while j + 1 < stable.size and stable[j + 1]:
                j += 1
            runs.append((i, j + 1))  # points i .. j+1
            i = j + 1
        else:
            i += 1
    if not runs:
        raise MechanicalInstabilityError(
            'the pressure never falls as the volume grows: no point lies on a mechanically stable branch'
        )
    crossing = [r for r in runs if p[r[0]] >= 0 >= p[r[1]]]
    start, stop = max(crossing or runs, key=lambda r: (r[1] - r[0], -r[0]))
    fitted = np.arange(start + (start > 0), stop + 1 - (stop < v.size - 1))
    return StableBranch(
        start=start,
        stop=stop,
        fitted=fitted,
        p_max_index=start,
        p_max_is_lower_bound=start == 0,
        spinodal_index=stop if stop < v.size - 1 else None,
        collapsed=np.arange(0, start),
        beyond_spinodal=np.arange(stop + 1, v.size),
    )


@dataclass
class PressureVolumeFit:
    """A P(V) equation of state of the well-behaved region, P_max and the spinodal."""

    form: str
    v0: float  #: Å³
    b0: float  #: GPa
    b0_prime: float  #: 4 for 'birch-murnaghan-2'
    v0_error: float
    b0_error: float
    b0_prime_error: float  #: 0 when fixed
    chi2_reduced: float | None  #: of a weighted fit (1 expected; errors scaled up by it above 1); None unweighted
    volumes: np.ndarray  #: all points, sorted by volume
    pressures: np.ndarray
    branch: StableBranch
    residuals: np.ndarray  #: fit − data at the fitted points, GPa
    rho0: float | None = None  #: g/cm³ when the mass is known
    rho0_error: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def p_max(self) -> float:
        """The maximum of the P–V curve in GPa (a lower bound when ``branch.p_max_is_lower_bound``)."""
        return float(self.pressures[self.branch.p_max_index])

    def pressure(self, volumes) -> np.ndarray:
        """Evaluate the fitted P(V), in GPa."""
        return eos_pressure(self.form, volumes, self.b0, self.b0_prime, self.v0)

    def as_dict(self) -> dict:
        """JSON-ready record; the keys carry their units."""
        b, v = self.branch, self.volumes
        return {
            **unit_record(self, EOS_KEYS, ('form', 'v0', 'b0', 'b0_prime', 'rho0', 'chi2_reduced')),
            'P_max_GPa': self.p_max,
            'V_at_P_max_A3': float(v[b.p_max_index]),
            'P_max_is_lower_bound': b.p_max_is_lower_bound,
            'spinodal_GPa': None if b.spinodal_index is None else float(self.pressures[b.spinodal_index]),
            'fitted_volumes_A3': v[b.fitted].tolist(),
            'collapsed_volumes_A3': v[b.collapsed].tolist(),
            'beyond_spinodal_volumes_A3': v[b.beyond_spinodal].tolist(),
            'residuals_GPa': self.residuals.tolist(),
            'warnings': list(self.warnings),
        }


def fit_pressure_volume(
    volumes,
    pressures,
    pressure_errors=None,
    volume_errors=None,
    mass_amu: float | None = None,
    form: str = 'birch-murnaghan-2',
) -> PressureVolumeFit:
    """Fit P(V) points (Å³, GPa) on their well-behaved region (:func:`stable_branch`) → B0, V0 (ρ0 given the mass).

    Points from NPT runs carry errors in the volume (⟨V⟩ at a set pressure), from NVT runs in the pressure; both
    enter as the effective variance σ_P² + (dP/dV)² σ_V², dP/dV from a first fit. With errors the fit is weighted
    and its parameter errors are absolute, scaled up by the reduced χ² when that exceeds 1 (scatter beyond the
    stated errors); without, they come from the residual variance. Collapsed points and points beyond the
    spinodal are left out and reported in ``warnings``.
    """
    forms = ('birch-murnaghan-2', *FORMS)
    if form not in forms:
        raise ValueError(f'unknown equation of state {form!r}; choose one of {", ".join(forms)}')
    parameters = 2 if form == 'birch-murnaghan-2' else 3
    v, p, order = sorted_points(volumes, pressures, 'pressure', minimum=parameters + 1)
    sigma_p = np.zeros_like(p) if pressure_errors is None else np.asarray(pressure_errors, dtype=float)[order]
    sigma_v = np.zeros_like(p) if volume_errors is None else np.asarray(volume_errors, dtype=float)[order]
    if np.any(sigma_p < 0) or np.any(sigma_v < 0) or not np.all(np.isfinite(sigma_p + sigma_v)):
        raise ValueError('the errors of the points must be finite and non-negative')
    branch = stable_branch(v, p)
    notes = []
    if branch.collapsed.size:
        notes.append(
            f'{branch.collapsed.size} point(s) below V = {v[branch.start]:.6g} Å³ lie past P_max on the collapsing '
            'branch (pressure falls on compression); left out of the fit'
        )
    if branch.p_max_is_lower_bound:
        notes.append(f'no maximum of P(V) in the grid: P_max ≥ {p[0]:.4g} GPa; add smaller volumes to find it')
    if branch.beyond_spinodal.size:
        beyond = ', '.join(f'{v[i]:.6g} Å³ ({p[i]:.3g} GPa)' for i in branch.beyond_spinodal)
        notes.append(
            f'the pressure turns at the spinodal, {p[branch.stop]:.4g} GPa at {v[branch.stop]:.6g} Å³; '
            f'points beyond it are mechanically unstable (dP/dV > 0) and left out: {beyond}'
        )
    if not p[branch.start] >= 0 >= p[branch.stop]:
        notes.append('the pressure does not cross zero on the stable branch: V0 and B0 are extrapolated')
    fitted = branch.fitted
    if fitted.size < parameters + 1:
        raise ValueError(
            f'only {fitted.size} point(s) of the stable branch lie between its turning points; a {form} fit and '
            f'its errors need {parameters + 1}: add volumes between {v[branch.start]:.6g} and {v[branch.stop]:.6g} Å³'
        )
    x, y = v[fitted], p[fitted]
    weighted = pressure_errors is not None or volume_errors is not None
    slope, intercept = np.polyfit(x, y, 1)
    start = [float(-x.mean() * slope), 4.0, float(-intercept / slope)] if slope < 0 else [1.0, 4.0, float(x.max())]
    if parameters == 2:
        start.pop(1)

    def model(q, volume):
        return eos_pressure(form, volume, q[0], 4.0 if parameters == 2 else q[1], q[-1])

    derivative = np.full_like(x, slope)
    for _ in range(2):  # the effective variance needs dP/dV, taken from the previous fit
        sigma = np.sqrt(sigma_p[fitted] ** 2 + (derivative * sigma_v[fitted]) ** 2) if weighted else np.ones_like(x)
        if np.any(sigma == 0):
            raise ValueError('a fitted point has zero error: give every point a positive error, or none')
        result = least_squares(lambda q, s=sigma: (model(q, x) - y) / s, start, x_scale='jac', method='lm')
        start = result.x
        step = 1e-6 * x
        derivative = (model(start, x + step) - model(start, x - step)) / (2 * step)
    dof = x.size - parameters
    chi2 = float(np.sum(result.fun**2) / dof)
    covariance = fit_covariance(result, dof, max(chi2, 1.0) if weighted else None)
    errors = np.sqrt(np.abs(np.diag(covariance)))
    b0, v0 = float(result.x[0]), float(result.x[-1])
    fit = PressureVolumeFit(
        form=form,
        v0=v0,
        b0=b0,
        b0_prime=4.0 if parameters == 2 else float(result.x[1]),
        v0_error=float(errors[-1]),
        b0_error=float(errors[0]),
        b0_prime_error=0.0 if parameters == 2 else float(errors[1]),
        chi2_reduced=chi2 if weighted else None,
        volumes=v,
        pressures=p,
        branch=branch,
        residuals=model(result.x, x) - y,
        warnings=notes,
    )
    if mass_amu is not None:
        fit.rho0 = density_g_cm3(mass_amu, v0)
        fit.rho0_error = fit.rho0 * fit.v0_error / v0
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return fit


def strain_volumes(volume: float, strain: float = 0.015, points: int = 3) -> np.ndarray:
    """``points`` volumes evenly from V(1 − strain) to V(1 + strain) (the ZIF paper: ±1.5 % of the volume)."""
    if not 0 < strain < 0.5 or points < 2:
        raise ValueError(f'strain {strain} must lie in (0, 0.5) and points {points} must be at least 2')
    return volume * np.linspace(1.0 - strain, 1.0 + strain, points)


@dataclass
class FiniteStrainBulkModulus:
    """B = −V dP/dV at ``volume`` from ⟨P⟩ at fixed volumes, with the pressure there."""

    b: float  #: GPa
    b_error: float
    volume: float  #: Å³, where B and P are given
    pressure: float  #: GPa, ⟨P⟩ at ``volume`` from the linear fit
    pressure_error: float
    chi2_reduced: float | None  #: of the straight line, when there are more than 2 points and errors

    def as_dict(self) -> dict:
        """JSON-ready record; the keys carry their units."""
        return unit_record(self, {'b': 'B_GPa', 'volume': 'V_A3', 'pressure': 'P_GPa'})


def finite_difference_bulk_modulus(
    volumes, pressures, pressure_errors=None, volume: float | None = None
) -> FiniteStrainBulkModulus:
    """B = −V dP/dV from ⟨P⟩ (GPa) at fixed volumes (Å³), the slope by (weighted) least squares.

    For the paper's three volumes V(1 ± δ) and V this is the central difference −V (P₊ − P₋)/(V₊ − V₋) with
    σ_B = V √(σ₊² + σ₋²)/(V₊ − V₋). ``volume`` (default: the mean volume) is where B is reported. Without
    ``pressure_errors`` the error comes from the scatter about the line (needs 3 volumes). Refuses a rising
    pressure (:class:`MechanicalInstabilityError`: past the spinodal when the pressures are negative).
    """
    v, p, order = sorted_points(volumes, pressures, 'pressure', minimum=2 if pressure_errors is not None else 3)
    if pressure_errors is not None:
        sigma = np.asarray(pressure_errors, dtype=float).ravel()[order]
        if sigma.size != v.size or not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
            raise ValueError('give one positive, finite pressure error per volume')
    else:
        sigma = np.ones_like(p)
    w = 1.0 / sigma**2
    v_mean, p_mean = np.sum(w * v) / np.sum(w), np.sum(w * p) / np.sum(w)
    spread = np.sum(w * (v - v_mean) ** 2)
    slope = np.sum(w * (v - v_mean) * (p - p_mean)) / spread
    at = float(np.mean(v)) if volume is None else float(volume)
    residuals = p - (p_mean + slope * (v - v_mean))
    dof = v.size - 2
    chi2 = float(np.sum(w * residuals**2) / dof) if dof > 0 else None
    scale = 1.0 if pressure_errors is not None else chi2
    slope_error = np.sqrt(scale / spread)
    if slope >= 0:
        where = 'beyond the spinodal (negative pressures)' if np.all(p < 0) else 'on an unstable branch'
        raise MechanicalInstabilityError(
            f'the pressure rises with the volume (dP/dV = {slope:.4g} GPa/Å³ ± {slope_error:.2g}): the volumes lie '
            f'{where}, where B would be negative; choose volumes closer to the equilibrium'
        )
    pressure = float(p_mean + slope * (at - v_mean))
    pressure_error = float(np.sqrt(scale * (1.0 / np.sum(w) + (at - v_mean) ** 2 / spread)))
    return FiniteStrainBulkModulus(
        b=float(-at * slope),
        b_error=float(at * slope_error),
        volume=at,
        pressure=pressure,
        pressure_error=pressure_error,
        chi2_reduced=chi2 if pressure_errors is not None else None,
    )
