"""Elastic constants from the fluctuations of an NσT run with a flexible triclinic cell.

Units: cells and volumes Å / Å³, temperatures K, moduli GPa.

- Volume fluctuations: B = k_B T ⟨V⟩ / (⟨V²⟩ − ⟨V⟩²) (:func:`volume_fluctuation_bulk_modulus`). Strictly this is
  the Reuss (uniform stress) bulk modulus, the same as 1/Σ_{i,j≤3} S_ij of the compliance below.
- Strain fluctuations (Parrinello & Rahman, J. Chem. Phys. 76, 2662, 1982): the compliance in Voigt form is
  S = ⟨V⟩/(k_B T) · ⟨δε δε^T⟩ and the stiffness C = S⁻¹ (:func:`strain_fluctuation_stiffness`).

Strain convention (:func:`lagrangian_strains`). Cells are 3×3 matrices whose *rows* are the cell vectors (ASE,
LAMMPS dumps). The reference is the mean cell h̄ = ⟨h⟩ (element by element: the runs keep the cell's orientation
fixed, LAMMPS by construction). With column vectors H = hᵀ the deformation gradient is F = H H̄⁻¹ and the
Green–Lagrange strain ε = ½ (FᵀF − I) = ½ (h̄⁻¹ h hᵀ h̄⁻ᵀ − I), which depends only on the metric h hᵀ and so not on
rotations. Voigt order (11, 22, 33, 23, 13, 12) with engineering shears (ε₄ = 2ε₂₃, ε₅ = 2ε₁₃, ε₆ = 2ε₁₂), so that
σ = C ε and the strain energy is V/2 · εᵀ C ε; δε = ε − ⟨ε⟩.

Hill averages (:func:`hill_averages`) from the Voigt (uniform strain) and Reuss (uniform stress) bounds of the bulk
and shear moduli, then E = 9BG/(3B + G) and ν = (3B − 2G)/(2(3B + G)). Errors: blocked jackknife over time blocks
longer than the correlation time found by block averaging (:mod:`aiida_mofal.analysis.statistics`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import constants

from .eos import EV_PER_A3_IN_GPA
from .records import unit_record
from .statistics import block_average, blocked_jackknife

__all__ = (
    'BOLTZMANN_EV_PER_K',
    'ElasticFluctuations',
    'FluctuationBulkModulus',
    'hill_averages',
    'lagrangian_strains',
    'strain_fluctuation_stiffness',
    'volume_fluctuation_bulk_modulus',
)

#: k_B in eV/K
BOLTZMANN_EV_PER_K = constants.k / constants.e
#: record keys (with their units) of the fluctuation results' fields; see :func:`.records.unit_record`
FLUCTUATION_KEYS = {'b': 'B_GPa', 'mean_volume': 'V_mean_A3', 'temperature': 'temperature_K', 'stiffness': 'C_GPa'}
#: the fields that describe the run and its blocking, after the results
RUN_FIELDS = ('mean_volume', 'temperature', 'n_samples', 'n_blocks', 'block_length', 'warnings')
#: the moduli of :func:`hill_averages`, in the order of its vector form
HILL_KEYS = ('B_voigt', 'B_reuss', 'B_hill', 'G_voigt', 'G_reuss', 'G_hill', 'E_hill', 'nu_hill')


def _check_temperature(temperature: float) -> float:
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f'the temperature must be positive (K), got {temperature}')
    return float(temperature)


def _block_length(series: list[np.ndarray], names: list[str]) -> tuple[int, list[str]]:
    """Jackknife block length: four integrated correlation times of the slowest series (at least 1 sample).

    Each series counts twice: itself and its squared deviations (x − ⟨x⟩)². The moduli are (co)variances, and the
    squared deviations of a barostat's volume can decorrelate ten times more slowly than the volume (the energy
    in the cell modes is exchanged on the damping time, the volume oscillates much faster): the correlation time
    of x alone then gives jackknife blocks too short, errors too small and no warning.
    """
    notes, tau = [], 0.5
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # collected and reported once by the caller
        for values, name in zip(series, names):
            values = np.asarray(values, dtype=float)
            for data, label in ((values, name), ((values - values.mean()) ** 2, f'{name} fluctuation²')):
                average = block_average(data, name=label)
                tau = max(tau, average.correlation_time)
                notes.extend(average.warnings)
    return max(1, int(np.ceil(4 * tau))), notes


@dataclass
class FluctuationBulkModulus:
    """B from the volume fluctuations of an NPT (NσT) run."""

    b: float  #: GPa
    b_error: float
    mean_volume: float  #: Å³
    mean_volume_error: float
    temperature: float
    n_samples: int
    n_blocks: int  #: jackknife blocks
    block_length: int  #: samples per block
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready record; the keys carry their units."""
        return unit_record(self, FLUCTUATION_KEYS)


def _bulk_from_volumes(volumes: np.ndarray, kt: float) -> float:
    return kt * volumes.mean() / volumes.var() * EV_PER_A3_IN_GPA


def volume_fluctuation_bulk_modulus(
    volumes, temperature: float, block_length: int | None = None
) -> FluctuationBulkModulus:
    """B = k_B T ⟨V⟩ / (⟨V²⟩ − ⟨V⟩²) in GPa from a volume series (Å³) of an equilibrated NPT run at ``temperature``.

    The error is a blocked jackknife; ``block_length`` (samples) defaults to four correlation times of V or of
    (V − ⟨V⟩)², whichever is longer (:func:`_block_length`). A run too short for either correlation time is
    flagged in ``warnings`` (and a Python warning).
    """
    kt = BOLTZMANN_EV_PER_K * _check_temperature(temperature)
    v = np.asarray(volumes, dtype=float)
    average = block_average(v, name='volume')  # validates the series; warns when too short
    if np.ptp(v) == 0:
        raise ValueError('the volume does not fluctuate: was the cell fixed (NVT) instead of NPT?')
    length, notes = _block_length([v], ['volume'])
    for note in notes[len(average.warnings) :]:
        warnings.warn(note, stacklevel=2)
    if block_length is None:
        block_length = length
    b, b_error, count = blocked_jackknife(v, lambda x: _bulk_from_volumes(x, kt), block_length)
    return FluctuationBulkModulus(
        b=float(b),
        b_error=float(b_error),
        mean_volume=average.mean,
        mean_volume_error=average.error,
        temperature=float(temperature),
        n_samples=v.size,
        n_blocks=count,
        block_length=int(block_length),
        warnings=notes,
    )


def lagrangian_strains(cells, reference=None) -> np.ndarray:
    """Green–Lagrange strains (frames × 6, Voigt, engineering shears) of cells (frames × 3 × 3, rows = vectors).

    ``reference`` defaults to the mean cell.
    """
    h = np.asarray(cells, dtype=float)
    if h.ndim != 3 or h.shape[1:] != (3, 3):
        raise ValueError(f'cells must be an array of frames × 3 × 3 cell matrices, got shape {h.shape}')
    if not np.all(np.isfinite(h)):
        raise ValueError('a cell matrix holds a non-finite number; drop the broken frames')
    ref = h.mean(axis=0) if reference is None else np.asarray(reference, dtype=float)
    if abs(np.linalg.det(ref)) < 1e-8:
        raise ValueError('the reference cell is singular: give periodic cells in all three directions')
    inverse = np.linalg.inv(ref)
    metric = np.einsum('nij,nkj->nik', h, h)  # h hᵀ
    strain = 0.5 * (np.einsum('ij,njk,lk->nil', inverse, metric, inverse) - np.eye(3))
    return np.stack(
        [
            strain[:, 0, 0],
            strain[:, 1, 1],
            strain[:, 2, 2],
            2 * strain[:, 1, 2],
            2 * strain[:, 0, 2],
            2 * strain[:, 0, 1],
        ],
        axis=1,
    )


def hill_averages(stiffness) -> dict[str, float]:
    """Voigt, Reuss and Hill bulk and shear moduli, Hill Young's modulus and Poisson's ratio of a 6×6 stiffness.

    In the unit of ``stiffness`` (ν dimensionless); keys :data:`HILL_KEYS`.
    """
    c = np.asarray(stiffness, dtype=float)
    s = np.linalg.inv(c)
    b_voigt = (c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[1, 2] + c[0, 2])) / 9
    g_voigt = (c[0, 0] + c[1, 1] + c[2, 2] - (c[0, 1] + c[1, 2] + c[0, 2]) + 3 * (c[3, 3] + c[4, 4] + c[5, 5])) / 15
    b_reuss = 1 / (s[0, 0] + s[1, 1] + s[2, 2] + 2 * (s[0, 1] + s[1, 2] + s[0, 2]))
    g_reuss = 15 / (
        4 * (s[0, 0] + s[1, 1] + s[2, 2]) - 4 * (s[0, 1] + s[1, 2] + s[0, 2]) + 3 * (s[3, 3] + s[4, 4] + s[5, 5])
    )
    b_hill, g_hill = (b_voigt + b_reuss) / 2, (g_voigt + g_reuss) / 2
    values = (
        b_voigt,
        b_reuss,
        b_hill,
        g_voigt,
        g_reuss,
        g_hill,
        9 * b_hill * g_hill / (3 * b_hill + g_hill),
        (3 * b_hill - 2 * g_hill) / (2 * (3 * b_hill + g_hill)),
    )
    return {key: float(value) for key, value in zip(HILL_KEYS, values)}


@dataclass
class ElasticFluctuations:
    """The stiffness tensor from strain fluctuations, its Hill averages and their jackknife errors."""

    stiffness: np.ndarray  #: 6×6 Voigt, GPa
    stiffness_error: np.ndarray
    hill: dict[str, float]  #: :data:`HILL_KEYS`, GPa (ν dimensionless)
    hill_error: dict[str, float]
    mean_volume: float  #: Å³
    temperature: float
    n_samples: int
    n_blocks: int
    block_length: int
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready record; the keys carry their units."""
        return {
            **unit_record(self, FLUCTUATION_KEYS, ('stiffness',)),
            **{f'{key}_GPa' if key != 'nu_hill' else key: value for key, value in self.hill.items()},
            **{f'{key}_GPa_err' if key != 'nu_hill' else f'{key}_err': v for key, v in self.hill_error.items()},
            **unit_record(self, FLUCTUATION_KEYS, RUN_FIELDS),
        }


def strain_fluctuation_stiffness(cells, temperature: float, block_length: int | None = None) -> ElasticFluctuations:
    """Compute the 6×6 stiffness C = (⟨V⟩/k_B T · ⟨δε δεᵀ⟩)⁻¹ in GPa from the cells of an NσT run.

    ``cells``: frames × 3 × 3 (rows = cell vectors, Å) of an equilibrated run at ``temperature`` (K). Errors of C
    and of the Hill averages by blocked jackknife, ``block_length`` defaulting to four times the longest
    correlation time among the volume, the six strains and their squared deviations. Flags a run too short for its
    correlation time. C is positive definite by construction (the inverse of a covariance); a cell held partly
    fixed is refused.
    """
    kt = BOLTZMANN_EV_PER_K * _check_temperature(temperature)
    h = np.asarray(cells, dtype=float)
    strains = lagrangian_strains(h)
    if h.shape[0] < 20:
        raise ValueError(f'{h.shape[0]} frames cannot give the 21 independent elastic constants; run longer')
    volumes = np.abs(np.linalg.det(h))
    spread = strains.std(axis=0)
    if np.any(spread <= 1e-9 * spread.max()):
        raise ValueError('a strain component does not fluctuate: the cell (or part of it) was held fixed; use NσT')
    if np.linalg.cond(np.corrcoef(strains, rowvar=False)) > 1e8:
        raise ValueError(
            'the strain fluctuations are singular (some cell degrees of freedom move together or not at all): '
            'run NσT with a fully flexible triclinic cell (LAMMPS: fix npt ... tri)'
        )
    names = ['volume', *(f'strain {i + 1}' for i in range(6))]
    length, notes = _block_length([volumes, *strains.T], names)
    if block_length is not None:
        length = int(block_length)
    frames = np.concatenate([volumes[:, None], strains], axis=1)

    def estimate(data: np.ndarray) -> np.ndarray:
        compliance = data[:, 0].mean() / kt * np.cov(data[:, 1:], rowvar=False, bias=True)
        stiffness = np.linalg.inv(compliance) * EV_PER_A3_IN_GPA
        return np.concatenate([stiffness.ravel(), list(hill_averages(stiffness).values())])

    value, error, count = blocked_jackknife(frames, estimate, length)
    result = ElasticFluctuations(
        stiffness=value[:36].reshape(6, 6),
        stiffness_error=error[:36].reshape(6, 6),
        hill=dict(zip(HILL_KEYS, value[36:].tolist())),
        hill_error=dict(zip(HILL_KEYS, error[36:].tolist())),
        mean_volume=float(volumes.mean()),
        temperature=float(temperature),
        n_samples=int(h.shape[0]),
        n_blocks=count,
        block_length=length,
        warnings=notes,
    )
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return result
