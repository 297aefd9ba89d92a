"""The E–V result calcfunction on a relaxation record: a minimum outside the grid is fitted and flagged; the P–V and
finite-strain calcfunctions pass each run's series, in walk order, to their analyses."""

import numpy as np
import pytest
from aiida import orm

from aiida_mofal.analysis import eos_methods
from aiida_mofal.analysis.eos import EV_PER_A3_IN_GPA, eos_energy
from aiida_mofal.calculations.eos import compare_bulk_moduli, ev_result, pv_result, strain_result
from aiida_mofal.data.trajectory import MdTrajectoryData


def _record(volumes):
    energies = eos_energy('vinet', volumes, -14.0, 140.0 / EV_PER_A3_IN_GPA, 4.8, 47.0)
    return orm.Dict({'structures': {f'v{k}': {'volume_A3': v, 'energy_eV': e, 'converged': True, 'num_atoms': 4}
                                    for k, (v, e) in enumerate(zip(volumes, energies))}})  # fmt: skip


def test_ev_result_fits_both_forms_and_flags_a_minimum_outside_the_grid(aiida_profile):
    settings = orm.Dict({'allow_unbracketed': False})
    result = ev_result(_record(np.linspace(44.2, 49.8, 9)), settings)
    assert result['bracketed'] and abs(result['B0_GPa'] - 140.0) < 1.0 and result['num_atoms'] == 4
    flagged = ev_result(_record(np.linspace(47.5, 53.0, 9)), settings)
    assert not flagged['bracketed'] and any('outside the grid' in note for note in flagged['warnings'])
    comparison = compare_bulk_moduli(ev=result, other=orm.Dict({'B0_GPa': 141.0, 'B0_GPa_err': 2.0}))
    assert comparison['all_agree']


def _runs(volumes, pressures, pressure_target=None):
    """NPT/NVT runs as trajectories ``walk_<k>`` (40 thermo lines each), stored under shuffled link names."""
    rng = np.random.default_rng(3)
    steps = np.arange(40) * 10.0
    runs = {}
    for k, (volume, pressure) in enumerate(zip(volumes, pressures)):
        thermo = {
            'step': steps,
            'volume': volume + rng.normal(0, 0.01, 40),
            'pressure': pressure + rng.normal(0, 0.1, 40),
        }
        frames = {'positions': np.zeros((1, 1, 3)), 'cells': np.eye(3)[None] * volume ** (1 / 3), 'steps': [0]}
        extra = {} if pressure_target is None else {'pressure': [pressure_target[k], pressure_target[k]]}
        runs[f'walk_{k}'] = MdTrajectoryData(frames, thermo, numbers=[29], extra_attributes=extra).store()
    return dict(reversed(list(runs.items())))  # the calcfunctions order them by walk index, not by argument order


def test_pv_and_strain_results_analyse_the_runs_in_walk_order(aiida_profile):
    volumes, pressures = [48.0, 47.0, 46.0], [0.0, 1.0, 2.0]
    settings = orm.Dict({'equilibration': 0.25})
    runs = _runs(volumes, pressures, pressure_target=pressures)
    thermo = [runs[f'walk_{k}'].get_thermo() for k in range(3)]
    pv = pv_result(settings, orm.Float(63.5), **runs).get_dict()
    expected = eos_methods.analyse_pv(pressures, [t['volume'] for t in thermo], [t['step'] for t in thermo], 0.25,
                                      mass_amu=63.5)  # fmt: skip
    assert pv['pressures_GPa'] == pressures and pv['volumes_A3'] == pytest.approx(expected['volumes_A3'])
    assert pv['B0_GPa'] == pytest.approx(expected['B0_GPa'])
    strain = strain_result(settings, orm.Float(47.0), **runs).get_dict()
    expected = eos_methods.analyse_strain([float(t['volume'][0]) for t in thermo], [t['pressure'] for t in thermo],
                                          [t['step'] for t in thermo], 0.25, 47.0)  # fmt: skip
    assert strain['volumes_A3'] == pytest.approx([float(t['volume'][0]) for t in thermo])
    assert strain['pressures_GPa'] == pytest.approx(expected['pressures_GPa'])
    assert strain['B0_GPa'] == pytest.approx(expected['B0_GPa']) and strain['B0_GPa'] > 0
