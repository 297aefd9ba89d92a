"""Evaluation and scan of a real MACE model: the calcfunctions, and the CalcJob really run on localhost."""

import mace  # noqa: F401  (before e3nn: tiny_mace_model_file in tests/conftest.py imports e3nn first)
import numpy as np
import pytest
from aiida import engine, orm
from ase import Atoms
from ase.build import molecule

from aiida_mofal.calculations.density import fit_density_model
from aiida_mofal.calculations.mace_evaluate import MaceEvaluateCalculation, evaluate_model
from aiida_mofal.data import DatasetData, MaceModelData
from aiida_mofal.data.density_model import DensityModelData


def _water_frames(seed=0):
    """Three water-dimer clusters and one periodic box of two waters, with made-up labels."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(4):
        first, second = molecule('H2O'), molecule('H2O')
        second.translate([2.9, 0.1 * index, 0.0])
        atoms = first + second
        atoms.rattle(0.05, seed=seed * 10 + index)
        if index < 3:
            atoms.center(vacuum=4.0)
            atoms.pbc = False
        else:
            atoms.set_cell([6.0, 5.5, 5.0])
            atoms.center()
            atoms.pbc = True
            atoms.info['REF_stress'] = rng.normal(0.0, 0.01, 6)
        atoms.info['REF_energy'] = float(-475.0 + rng.normal())
        atoms.arrays['REF_forces'] = rng.normal(0.0, 0.5, (len(atoms), 3))
        frames.append(atoms)
    return frames


@pytest.fixture
def model_and_data(aiida_profile, tiny_mace_model_file):
    model = MaceModelData(tiny_mace_model_file, trusted=True).store()
    dataset = DatasetData(_water_frames()).store()
    return model, dataset


def test_evaluate_model_calcfunction_records_provenance(model_and_data):
    model, dataset = model_and_data
    results, node = evaluate_model.run_get_node(model, dataset, percentile=orm.Float(90))
    assert node.is_finished_ok
    metrics = results['metrics'].get_dict()
    assert metrics['structures'] == 4 and metrics['atoms'] == 24 and metrics['percentile_k'] == 90.0
    assert set(metrics['per_element']) == {'H', 'O'}
    assert set(metrics['per_config_type']) == {'cluster', 'periodic'}
    assert metrics['stress_structures'] == 1
    assert metrics['force_max_ev_per_a'] >= metrics['force_mae_p90_ev_per_a'] >= metrics['force_mae_ev_per_a']
    # the metrics are those of the model's own predictions
    errors = results['errors']
    calculator = model.get_calculator()
    atoms = dataset.get_atoms()[3]
    atoms.calc = calculator
    np.testing.assert_allclose(errors.get_array('energy_pred')[3], atoms.get_potential_energy(), rtol=1e-12)
    np.testing.assert_allclose(errors.get_array('forces_pred')[18:], atoms.get_forces(), atol=1e-10)
    assert errors.get_array('force_error_norm').shape == (24,)
    assert {link.link_label for link in node.base.links.get_incoming().all()} == {'model', 'dataset', 'percentile'}


def test_bad_inputs_are_refused_before_anything_runs(model_and_data):
    model, _ = model_and_data
    zirconium = Atoms('Zr', positions=[[0, 0, 0]], pbc=False)
    zirconium.info['REF_energy'] = -1.0
    zirconium.arrays['REF_forces'] = np.zeros((1, 3))
    foreign = DatasetData([zirconium]).store()
    with pytest.raises(ValueError, match='contains Zr, which MACE model'):
        evaluate_model(model, foreign)
    unlabelled = DatasetData([molecule('H2O')]).store()
    builder = MaceEvaluateCalculation.get_builder()
    builder.model, builder.structures = model, unlabelled
    with pytest.raises(ValueError, match='no energy or force labels'):
        engine.run(builder)
    builder.settings = orm.Dict({'mode': 'scan', 'percentil': 95})
    with pytest.raises(ValueError, match=r"unknown settings \['percentil'\]"):
        engine.run(builder)


@pytest.mark.engine
def test_calcjob_on_localhost_gives_the_calcfunction_metrics(model_and_data, python_code):
    model, dataset = model_and_data
    expected = evaluate_model(model, dataset)

    builder = MaceEvaluateCalculation.get_builder()
    builder.code = python_code
    builder.model, builder.structures = model, dataset
    builder.metadata.options.max_wallclock_seconds = 600
    results, node = engine.run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    metrics = results['metrics'].get_dict()
    assert metrics.keys() == expected['metrics'].get_dict().keys()
    assert _nested_equal(metrics, expected['metrics'].get_dict())
    for name in ('energy_pred', 'forces_pred', 'stress_pred', 'forces_ref', 'numbers', 'structure_index'):
        np.testing.assert_allclose(
            results['errors'].get_array(name), expected['errors'].get_array(name), rtol=1e-10, equal_nan=True
        )
    # the script and its modules travelled with the job; the arrays were parsed, not stored twice
    assert {'mace_evaluate.py', 'mofal_metrics.py', 'mofal_features.py', 'mofal_gmm.py'} <= set(
        node.base.repository.list_object_names()
    )
    assert 'errors.npz' not in node.outputs.retrieved.base.repository.list_object_names()


@pytest.mark.engine
def test_scan_on_localhost_matches_the_density_model_node(model_and_data, python_code):
    model, dataset = model_and_data
    density = fit_density_model(model, dataset, orm.Dict({'max_components': 2}))
    assert isinstance(density, DensityModelData)
    frames = _water_frames(seed=1)
    frames[0].positions[3:] += [-0.8, 0.0, 0.0]  # squeeze one dimer: a new environment
    structures = DatasetData(frames).store()

    builder = MaceEvaluateCalculation.get_builder()
    builder.code = python_code
    builder.model, builder.structures, builder.density_model = model, structures, density
    builder.settings = orm.Dict({'mode': 'scan', 'write_features': True})
    results, node = engine.run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    scan = results['scan']
    local = density.score(structures.get_atoms(), model)
    np.testing.assert_allclose(scan.get_array('uncertainty'), np.concatenate([r['uncertainty'] for r in local]))
    np.testing.assert_allclose(scan.get_array('features'), np.concatenate([r['features'] for r in local]))
    unknown = np.concatenate([r['unknown'] for r in local])
    assert scan.get_array('unknown').tolist() == unknown.tolist()
    summary = results['summary'].get_dict()
    assert summary['atoms'] == 24 and summary['unknown_atoms'] == int(unknown.sum())
    assert scan.get_array('unknown')[:6].sum() > 0  # the squeezed dimer is flagged


def _nested_equal(left, right):
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_nested_equal(left[k], right[k]) for k in left)
    if isinstance(left, float):
        return left == pytest.approx(right, rel=1e-9, abs=1e-12)
    return left == right


def test_cli_evaluate_density_fit_and_uncertainty(model_and_data, tmp_path):
    import json

    from ase.io import read, write
    from click.testing import CliRunner

    from aiida_mofal.cli import cmd_root

    model, dataset = model_and_data
    runner = CliRunner()
    result = runner.invoke(cmd_root, ['evaluate', str(model.pk), str(dataset.pk), '--k', '90', '--json'])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = evaluate_model(model, dataset, percentile=orm.Float(90))['metrics'].get_dict()
    assert _nested_equal(report['metrics'], expected)
    assert orm.load_node(report['calculation']).process_type.endswith('evaluate_model')
    text = runner.invoke(cmd_root, ['evaluate', str(model.pk), str(dataset.pk)])
    assert text.exit_code == 0 and 'force MAE_p95' in text.output and 'meV/Å' in text.output

    result = runner.invoke(cmd_root, ['density', 'fit', str(model.pk), str(dataset.pk), '--max-components', '2'])
    assert result.exit_code == 0, result.output
    args = ['density', 'fit', model.uuid, str(dataset.pk), '--max-components', '2', '--json']
    fitted = json.loads(runner.invoke(cmd_root, args).stdout)
    density = orm.load_node(fitted['pk'])
    assert fitted['model_uuid'] == model.uuid and fitted['elements'] == ['H', 'O']

    frames = _water_frames(seed=3)
    frames[1].numbers[0] = 8  # an O where an H was: a strange environment for the atoms around it
    structure = tmp_path / 'frames.extxyz'
    write(structure, frames, format='extxyz')
    output = tmp_path / 'scored.extxyz'
    args = ['uncertainty', str(model.pk), str(density.pk), str(structure), '-o', str(output), '--json']
    result = runner.invoke(cmd_root, args)
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert scored['atoms'] == 24 and len(scored['structures']) == 4
    local = density.score(read(structure, index=':'), model)
    assert scored['structures'][1]['uncertainty'] == pytest.approx(local[1]['uncertainty'].tolist())
    written = read(output, index=':')
    assert written[1].arrays['mofal_uncertainty'] == pytest.approx(local[1]['uncertainty'])
    assert written[1].arrays['mofal_unknown'].tolist() == local[1]['unknown'].tolist()

    # a density model of another model, or a structure the model cannot describe, is refused with the reason
    zinc = tmp_path / 'zinc.extxyz'
    write(zinc, Atoms('Zn', positions=[[0, 0, 0]]), format='extxyz')
    result = runner.invoke(cmd_root, ['uncertainty', str(model.pk), str(density.pk), str(zinc)])
    assert result.exit_code != 0 and 'Zn' in result.output


@pytest.mark.engine
def test_script_failure_is_reported_with_its_reason(model_and_data, python_code):
    """No GPU here: asking for CUDA makes the remote script fail, and the exit message says why."""
    import torch

    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    model, dataset = model_and_data
    builder = MaceEvaluateCalculation.get_builder()
    builder.code = python_code
    builder.model, builder.structures = model, dataset
    builder.settings = orm.Dict({'device': 'cuda'})
    _, node = engine.run_get_node(builder)
    assert node.exit_status == MaceEvaluateCalculation.exit_codes.ERROR_SCRIPT_FAILED.status
    assert 'CUDA' in node.exit_message or 'cuda' in node.exit_message
    assert 'metrics' not in node.outputs
