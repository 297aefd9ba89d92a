"""Error metrics against values worked out by hand on small arrays."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from aiida_mofal.mlp.metrics import (
    EV_PER_A3_TO_GPA,
    ErrorData,
    collect_errors,
    compute_metrics,
    delta_e_statistics,
    json_safe,
    mae,
    mae_pk,
    predict_labels,
    rmse,
)

ERRORS = np.array([0.1, -0.2, 0.3, -0.4, 1.0])


def test_mae_pk_limits_and_interior_percentiles():
    # k = 0: every error is at or above the minimum, so MAE_p0 is the MAE = 2.0 / 5
    assert mae_pk(ERRORS, 0) == pytest.approx(0.4)
    assert mae_pk(ERRORS, 0) == pytest.approx(mae(ERRORS))
    # k = 100: only the largest error is at or above the maximum
    assert mae_pk(ERRORS, 100) == pytest.approx(1.0)
    # k = 60: sorted |e| = .1 .2 .3 .4 1.0, position 0.6 * 4 = 2.4 -> .3 + .4 * .1 = .34; kept: .4 and 1.0
    assert mae_pk(ERRORS, 60) == pytest.approx(0.7)
    # k = 50: the median .3 itself is kept: (.3 + .4 + 1.0) / 3
    assert mae_pk(ERRORS, 50) == pytest.approx(1.7 / 3)
    # k = 95: position 3.8 -> .4 + .8 * .6 = .88; only 1.0 is above
    assert mae_pk(ERRORS, 95) == pytest.approx(1.0)
    # shape does not matter: force components of an N x 3 array
    assert mae_pk(ERRORS.reshape(5, 1) * np.ones((1, 3)), 60) == pytest.approx(0.7)
    with pytest.raises(ValueError, match='within'):
        mae_pk(ERRORS, 101)


def test_mae_rmse_and_delta_e_by_hand():
    assert rmse(ERRORS) == pytest.approx(np.sqrt((0.01 + 0.04 + 0.09 + 0.16 + 1.0) / 5))
    # dE_i = (E_pred - E_ref) / N: (0.2 / 2, -0.8 / 4) = (0.1, -0.2); mean -0.05; population std 0.15
    avg, std = delta_e_statistics([-9.8, -20.8], [-10.0, -20.0], [2, 4])
    assert avg == pytest.approx(-0.05)
    assert std == pytest.approx(0.15)


def _two_structures():
    cluster = Atoms('HO', positions=[[0, 0, 0], [0, 0, 1.0]], pbc=False)
    cluster.info.update({'REF_energy': -10.0, 'config_type': 'cluster'})
    cluster.arrays['REF_forces'] = np.zeros((2, 3))
    cell = Atoms('H2O2', positions=[[0, 0, 0], [0, 0, 1.0], [1.5, 0, 0], [1.5, 0, 1.0]], cell=[3, 3, 3], pbc=True)
    cell.info.update({'REF_energy': -20.0, 'config_type': 'periodic', 'REF_stress': np.zeros(6)})
    cell.arrays['REF_forces'] = np.ones((4, 3))
    predictions = [
        {'energy': -9.8, 'forces': np.array([[0.3, 0.0, 0.0], [0.0, -0.6, 0.0]])},
        {
            'energy': -20.8,
            'forces': np.ones((4, 3)) + np.array([[0.1, 0, 0], [0, 0, 0.2], [0, 0, 0], [0, 0, -1.2]]),
            'stress': np.array([0.01, -0.02, 0.0, 0.0, 0.0, 0.03]),
        },
    ]
    return [cluster, cell], predictions


def test_compute_metrics_overall_per_element_and_per_config_type():
    frames, predictions = _two_structures()
    data = collect_errors(frames, predictions)
    metrics = compute_metrics(data, k=95)

    assert metrics['structures'] == 2 and metrics['atoms'] == 6
    assert metrics['percentile_k'] == 95.0
    # energies: total errors 0.2 and -0.8 eV; per atom 0.1 and -0.2 eV/atom
    assert metrics['energy_mae_ev'] == pytest.approx(0.5)
    assert metrics['energy_rmse_ev'] == pytest.approx(np.sqrt((0.04 + 0.64) / 2))
    assert metrics['energy_mae_ev_per_atom'] == pytest.approx(0.15)
    assert metrics['delta_e_avg_ev_per_atom'] == pytest.approx(-0.05)
    assert metrics['delta_e_std_ev_per_atom'] == pytest.approx(0.15)
    # forces: 18 components, non-zero errors .3 .6 .1 .2 1.2 -> MAE 2.4 / 18
    assert metrics['force_components'] == 18
    assert metrics['force_mae_ev_per_a'] == pytest.approx(2.4 / 18)
    assert metrics['force_rmse_ev_per_a'] == pytest.approx(np.sqrt((0.09 + 0.36 + 0.01 + 0.04 + 1.44) / 18))
    assert metrics['force_max_ev_per_a'] == pytest.approx(1.2)
    assert metrics['force_mae_p95_ev_per_a'] == pytest.approx(1.2)  # 95th pct of 18 values lies above 0.6
    # per element: H atoms (cluster .3; cell .1, .2) -> 0.6 / 9 components; O atoms (.6; 0, 1.2) -> 1.8 / 9
    assert metrics['per_element']['H']['atoms'] == 3
    assert metrics['per_element']['H']['force_mae_ev_per_a'] == pytest.approx(0.6 / 9)
    assert metrics['per_element']['O']['force_mae_ev_per_a'] == pytest.approx(1.8 / 9)
    assert metrics['per_element']['O']['force_max_ev_per_a'] == pytest.approx(1.2)
    # stress only on the periodic cell: 6 components .01 .02 0 0 0 .03
    assert metrics['stress_structures'] == 1
    assert metrics['stress_mae_ev_per_a3'] == pytest.approx(0.06 / 6)
    assert metrics['stress_mae_gpa'] == pytest.approx(0.01 * EV_PER_A3_TO_GPA)
    # per config type
    cluster, periodic = metrics['per_config_type']['cluster'], metrics['per_config_type']['periodic']
    assert cluster['atoms'] == 2 and cluster['force_mae_ev_per_a'] == pytest.approx(0.9 / 6)
    assert cluster['delta_e_std_ev_per_atom'] == 0.0 and 'stress_mae_ev_per_a3' not in cluster
    assert periodic['energy_mae_ev_per_atom'] == pytest.approx(0.2)
    assert periodic['force_max_ev_per_a'] == pytest.approx(1.2)

    # k is in the key; other k's change only the tail metric
    assert compute_metrics(data, k=0)['force_mae_p0_ev_per_a'] == pytest.approx(metrics['force_mae_ev_per_a'])
    assert compute_metrics(data, k=100)['force_mae_p100_ev_per_a'] == pytest.approx(1.2)
    assert 'force_mae_p99_5_ev_per_a' in compute_metrics(data, k=99.5)


def test_error_data_keeps_per_atom_errors_and_parity_data():
    frames, predictions = _two_structures()
    data = collect_errors(frames, predictions)
    arrays = data.as_arrays()
    assert arrays['forces_ref'].shape == arrays['forces_pred'].shape == (6, 3)
    assert arrays['structure_index'].tolist() == [0, 0, 1, 1, 1, 1]
    assert arrays['numbers'].tolist() == [1, 8, 1, 1, 8, 8]
    assert arrays['force_error_norm'] == pytest.approx([0.3, 0.6, 0.1, 0.2, 0.0, 1.2])
    assert arrays['energy_error_per_atom'] == pytest.approx([0.1, -0.2])
    assert arrays['config_type'].tolist() == ['cluster', 'periodic']
    assert np.isnan(arrays['stress_ref'][0]).all() and not np.isnan(arrays['stress_ref'][1]).any()
    again = ErrorData.from_arrays(arrays)
    assert compute_metrics(again) == compute_metrics(data)


def test_unlabelled_and_mismatched_inputs():
    frames, predictions = _two_structures()
    with pytest.raises(ValueError, match='2 frames but 1 predictions'):
        collect_errors(frames, predictions[:1])
    predictions[0]['forces'] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r'expected \(2, 3\)'):
        collect_errors(frames, predictions)
    # a structure without labels contributes nothing (and no NaN) to the metrics
    bare = Atoms('H', positions=[[0, 0, 0]], pbc=False)
    frames, predictions = _two_structures()
    predictions.append({'energy': 1.0, 'forces': np.ones((1, 3))})
    metrics = compute_metrics(collect_errors([*frames, bare], predictions))
    assert metrics['force_components'] == 18 and metrics['energy_mae_ev'] == pytest.approx(0.5)
    assert json_safe({'a': np.float64('nan'), 'b': [np.int64(2)]}) == {'a': None, 'b': [2]}


def test_predict_labels_with_an_ase_calculator():
    copper = bulk('Cu', cubic=True)
    water = molecule('H2O')
    predictions = predict_labels([copper, water], EMT())
    assert set(predictions[0]) == {'energy', 'forces', 'stress'} and predictions[0]['stress'].shape == (6,)
    assert set(predictions[1]) == {'energy', 'forces'}  # clusters have no stress
    copper.calc = EMT()
    assert predictions[0]['energy'] == pytest.approx(copper.get_potential_energy())
