"""Real jobs through the project's SLURM over SSH (``slurm-localhost``, ``.ci/start-slurm.sh``).

A CP2K xTB label and a MACE evaluation go through core.ssh_async + core.slurm exactly as on a cluster: upload
over SFTP, ``sbatch``, ``squeue`` polling, retrieval; their results must equal the same jobs on localhost.
"""

import mace  # noqa: F401  (before e3nn: tiny_mace_model_file imports e3nn first)
import numpy as np
import pytest
from aiida import engine, orm
from ase.build import molecule

from aiida_mofal.calculations.mace_evaluate import MaceEvaluateCalculation, evaluate_model
from aiida_mofal.data import DatasetData, MaceModelData
from aiida_mofal.workchains.label import LabelWorkChain

pytestmark = [pytest.mark.engine, pytest.mark.slurm]


def _went_through_slurm(calc) -> None:
    assert calc.computer.label == 'slurm-localhost'
    assert calc.computer.scheduler_type == 'core.slurm' and calc.computer.transport_type == 'core.ssh_async'
    assert calc.get_job_id() is not None and calc.get_job_id().isdigit()  # a SLURM job id from sbatch
    assert calc.get_job_id() in calc.outputs.retrieved.get_object_content('_scheduler-stdout.txt')
    assert '#SBATCH --time=' in calc.base.repository.get_object_content('_aiidasubmit.sh')


def test_cp2k_xtb_label_through_slurm(slurm_codes):
    water = molecule('H2O')
    water.info.update(config_type='cluster', charge=0, multiplicity=1)
    overrides = {'isolated_atoms': False}  # one job: the free-atom E0s would be two more of the same kind
    code = slurm_codes['cp2k']
    builder = LabelWorkChain.get_builder_from_protocol(code, [water], protocol='xtb', overrides=overrides)
    results, node = engine.run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    (calc,) = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    _went_through_slurm(calc)
    labelled = results['dataset'].get_atoms()[0]
    assert labelled.arrays['REF_forces'].shape == (3, 3)
    assert np.isfinite(labelled.info['REF_energy'])


def test_mace_evaluation_through_slurm_equals_the_calcfunction(slurm_codes, tiny_mace_model_file):
    frames = []
    for index in range(3):
        atoms = molecule('H2O') + molecule('H2O')
        atoms.positions[3:] += [2.9, 0.1 * index, 0.0]
        atoms.info['REF_energy'] = -470.0 - index
        atoms.arrays['REF_forces'] = np.zeros((6, 3))
        frames.append(atoms)
    model = MaceModelData(tiny_mace_model_file, trusted=True).store()
    dataset = DatasetData(frames).store()
    builder = MaceEvaluateCalculation.get_builder()
    builder.code = slurm_codes['python-mace']
    builder.model, builder.structures = model, dataset
    builder.metadata.options.max_wallclock_seconds = 600
    results, calc = engine.run_get_node(builder)
    assert calc.is_finished_ok, (calc.exit_status, calc.exit_message)
    _went_through_slurm(calc)
    expected = evaluate_model(model, dataset)
    np.testing.assert_allclose(
        results['errors'].get_array('energy_pred'), expected['errors'].get_array('energy_pred'), rtol=1e-10
    )


def test_packed_labels_many_structures_in_one_slurm_job(slurm_codes):
    """Four xTB molecules in one SLURM job: one label per structure, each linked to that job."""
    from aiida_mofal.calculations.cp2k_packed import Cp2kPackedCalculation
    from aiida_mofal.calculations.labels import collect_labels
    from aiida_mofal.workchains.label import label_settings
    from tests.conftest import XTB, XTB_NAME

    frames = DatasetData.from_file(XTB / f'{XTB_NAME}.extxyz').get_atoms()[:4]
    for atoms in frames:
        atoms.info.update(config_type='cluster', charge=0, multiplicity=1)
    source = DatasetData(frames).store()
    settings = orm.Dict(label_settings('xtb'))
    builder = Cp2kPackedCalculation.get_builder()
    builder.code = slurm_codes['cp2k']
    builder.structures, builder.settings = source, settings
    builder.metadata.options.max_wallclock_seconds = 900
    results, calc = engine.run_get_node(builder)
    assert calc.is_finished_ok, calc.exit_message
    _went_through_slurm(calc)
    assert set(results['labels']) == {f'frame_{i:04d}' for i in range(4)} and 'failed' not in results
    script = calc.base.repository.get_object_content('_aiidasubmit.sh')
    assert script.count('cp2k.psmp') == 4  # four CP2K runs, one scheduler job
    labelled = collect_labels(source, settings, orm.Dict({}), results['frames'], **results['labels'])
    assert labelled.count == 4
    # per-structure provenance: the label of configuration 2 was created by this one SLURM job
    label = results['labels']['frame_0002']
    assert label.creator.uuid == calc.uuid and calc.get_job_id().isdigit()
    reference = np.array([atoms.info['REF_energy'] for atoms in frames])
    energies = np.array([atoms.info['REF_energy'] for atoms in labelled.get_atoms()])
    np.testing.assert_allclose(energies, reference, atol=1e-3)  # the stored xTB labels, made one job each
