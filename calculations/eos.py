"""Calcfunctions of ``mofal.eos``: one stored result per bulk-modulus method, and their comparison.

Each takes the nodes its method produced (the relaxation record of an E–V grid, the trajectories of MD runs) and
the method's settings, and calls the pure analysis of :mod:`aiida_mofal.analysis.eos_methods`, so the provenance
graph links every bulk modulus to the runs behind it. Results are Dicts with the points, the fit and its
uncertainty, and ``warnings`` (an unbracketed grid, a run too short for its correlation time, ...).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.analysis import eos_methods
from aiida_mofal.data.trajectory import MdTrajectoryData

__all__ = ['compare_bulk_moduli', 'ev_result', 'fluctuation_result', 'pv_result', 'strain_result']


def _ordered(trajectories: dict) -> list[MdTrajectoryData]:
    """Trajectories in the order of their walk index (the order of the grid)."""
    return [trajectories[key] for key in sorted(trajectories, key=lambda key: int(key.rsplit('_', 1)[1]))]


def _thermo_series(trajectories: list[MdTrajectoryData], *keys: str) -> list[list]:
    """Per key, the thermodynamic series of every trajectory (in the order given), each thermo read once."""
    thermo = [trajectory.get_thermo() for trajectory in trajectories]
    return [[series[key] for series in thermo] for key in keys]


@calcfunction
def ev_result(relaxations: orm.Dict, settings: orm.Dict) -> orm.Dict:
    """E–V of fixed-volume relaxations (record of ``mofal.relax.base``) → Birch–Murnaghan 3 and Vinet fits."""
    records = sorted(relaxations['structures'].values(), key=lambda record: record['volume_A3'])
    record = eos_methods.analyse_ev(
        [r['volume_A3'] for r in records],
        [r['energy_eV'] for r in records],
        [r['converged'] for r in records],
        allow_unbracketed=True,  # refused before submission unless asked for; flagged here
    )
    record['num_atoms'] = records[0]['num_atoms']
    if not settings['allow_unbracketed'] and not record['bracketed']:
        record['warnings'].append('the minimum lies outside the grid: the fit is an extrapolation')
    return orm.Dict(record)


@calcfunction
def pv_result(settings: orm.Dict, mass: orm.Float, **trajectories: MdTrajectoryData) -> orm.Dict:
    """⟨V⟩(P) of NPT runs (``walk_<k>`` in the order of ``settings['pressures']``) → BM2 fit, P_max."""
    ordered = _ordered(trajectories)
    volumes, steps = _thermo_series(ordered, 'volume', 'step')
    targets = [t.base.attributes.get('pressure') for t in ordered]  # the first stage's [start, end] (a hold)
    pressures = [target[0] if isinstance(target, list | tuple) else target for target in targets]
    return orm.Dict(eos_methods.analyse_pv(pressures, volumes, steps, settings['equilibration'], mass_amu=mass.value))


@calcfunction
def strain_result(settings: orm.Dict, reference_volume: orm.Float, **trajectories: MdTrajectoryData) -> orm.Dict:
    """⟨P⟩ of NVT runs at fixed volumes → B = −V dP/dV at the reference volume (finite strain)."""
    volumes, pressures, steps = _thermo_series(_ordered(trajectories), 'volume', 'pressure', 'step')
    fixed = [float(volume[0]) for volume in volumes]  # each NVT run's fixed volume
    return orm.Dict(
        eos_methods.analyse_strain(fixed, pressures, steps, settings['equilibration'], reference_volume.value)
    )


@calcfunction
def fluctuation_result(settings: orm.Dict, trajectory: MdTrajectoryData) -> orm.Dict:
    """NσT volume and strain fluctuations → B, the elastic tensor and its Hill averages, with block errors."""
    thermo = trajectory.get_thermo()
    return orm.Dict(
        eos_methods.analyse_fluctuations(
            trajectory.get_array('cells'),
            trajectory.get_array('steps'),
            thermo['volume'],
            thermo['step'],
            settings['temperature'],
            settings['equilibration'],
        )
    )


@calcfunction
def compare_bulk_moduli(**results: orm.Dict) -> orm.Dict:
    """Which methods (``ev``, ``pv``, ``strain``, ``fluctuations``) agree within two combined standard errors."""
    return orm.Dict(eos_methods.compare_methods({key: node.get_dict() for key, node in results.items()}))
