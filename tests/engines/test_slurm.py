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
    """Four xTB molecules in one SLURM job, one CP2K process: one label per structure, each linked to that job."""
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
    assert results['labels'].get_array('index').tolist() == [0, 1, 2, 3] and 'failed' not in results
    script = calc.base.repository.get_object_content('_aiidasubmit.sh')
    assert script.count('cp2k.psmp') == 1 and "'-i' 'farm.inp'" in script  # one CP2K process (FARMING) for 4
    farm = calc.outputs.retrieved.base.repository.get_object_content('farm.out')
    assert all(f'Done, output in frame_{i:04d}.out' in farm for i in range(4))
    labelled = collect_labels(source, settings, orm.Dict({}), orm.Dict({'pack': [0, 1, 2, 3]}), pack=results['labels'])
    assert labelled.count == 4
    # per-structure provenance: the one label node (row per structure) was created by this one SLURM job
    assert results['labels'].creator.uuid == calc.uuid and calc.get_job_id().isdigit()
    reference = np.array([atoms.info['REF_energy'] for atoms in frames])
    energies = np.array([atoms.info['REF_energy'] for atoms in labelled.get_atoms()])
    np.testing.assert_allclose(energies, reference, atol=1e-3)  # the stored xTB labels, made one job each


# -- failures SLURM really has: a job cancelled with scancel, a job stopped at its time limit -----------------


def _squeue() -> list[tuple[str, str, str, str]]:
    """(job id, name, state, work directory) of every job the project's SLURM lists."""
    import subprocess

    out = subprocess.run(['squeue', '-h', '-o', '%i %j %T %Z'], capture_output=True, text=True, check=True).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def _cancel_running_jobs(after_pk: int, count: int, cancelled: list, stop) -> None:
    """Cancel (``scancel``) the next ``count`` jobs of AiiDA nodes newer than ``after_pk`` once they really run.

    Really: the job script has started (its scheduler output shows the computer's ``SLURM job ...`` line), not only
    RUNNING in squeue, when slurmstepd may not have made the job's output files yet.
    """
    import subprocess
    import time
    from pathlib import Path

    while len(cancelled) < count and not stop.is_set():
        # this profile's jobs only: another profile on the same SLURM (a benchmark) has its own pks
        ours = {
            str(Path(workdir).resolve())
            for (workdir,) in orm.QueryBuilder()
            .append(orm.CalcJobNode, filters={'id': {'>': after_pk}}, project='attributes.remote_workdir')
            .all()
            if workdir
        }
        for job_id, name, state, workdir in _squeue():
            pk = name.removeprefix('aiida-')
            stdout = Path(workdir) / '_scheduler-stdout.txt'
            started = stdout.is_file() and 'SLURM job' in stdout.read_text(errors='replace')
            mine = str(Path(workdir).resolve()) in ours
            if state == 'RUNNING' and mine and pk.isdigit() and job_id not in cancelled and started:
                subprocess.run(['scancel', job_id], check=True)
                cancelled.append(job_id)
        time.sleep(0.5)


def _water():
    atoms = molecule('H2O')
    atoms.info.update(config_type='cluster', charge=0, multiplicity=1)
    return atoms


def test_a_job_cancelled_with_scancel_is_resubmitted_once_then_fails_clearly(slurm_codes):
    """Each CP2K job sleeps before CP2K starts and is cancelled while RUNNING: retried once, then reported."""
    import threading

    # a cancel's SIGTERM may kill only the sleep: then stop, rather than run CP2K before SLURM's SIGKILL
    options = {'prepend_text': 'sleep 600 || exit 1', 'max_wallclock_seconds': 900}
    builder = LabelWorkChain.get_builder_from_protocol(
        slurm_codes['cp2k'], [_water()], protocol='xtb', overrides={'isolated_atoms': False}, options=options
    )
    newest = orm.QueryBuilder().append(orm.Node, project='id').order_by({orm.Node: {'id': 'desc'}}).first()[0]
    cancelled, stop = [], threading.Event()
    canceller = threading.Thread(target=_cancel_running_jobs, args=(newest, 2, cancelled, stop), daemon=True)
    canceller.start()
    try:
        results, node = engine.run_get_node(builder)
    finally:
        stop.set()
        canceller.join(10)
    assert len(cancelled) == 2
    (base,) = [c for c in node.called if c.process_label == 'Cp2kBaseWorkChain']
    calcs = sorted(base.called, key=lambda c: c.ctime)
    assert [c.get_job_id() for c in calcs] == cancelled  # the two SLURM jobs cancelled: the first and its retry
    assert [c.exit_status for c in calcs] == [210, 210]  # no CP2K output
    stderr = calcs[0].outputs.retrieved.base.repository.get_object_content('_scheduler-stderr.txt')
    assert 'CANCELLED AT' in stderr
    assert base.exit_status == 311 and 'CANCELLED AT' in base.exit_message  # says why, in SLURM's words
    assert node.exit_status == LabelWorkChain.exit_codes.ERROR_ALL_FAILED.status
    assert results['failed']['frame_0']['exit_status'] == 311
