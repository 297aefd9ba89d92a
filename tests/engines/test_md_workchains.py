"""MdBaseWorkChain and ReaxffMdWorkChain for real on localhost: several walks in one job, a walk continued alone."""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mofal.calculations.md import MdCalculation
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.workchains.md import MdBaseWorkChain
from aiida_mofal.workchains.reaxff import ReaxffMdWorkChain
from tests.structure_files import read_structure

from .md_driver import FORCEFIELDS, MODEL

pytestmark = pytest.mark.engine
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': 1}}


def md_jobs(node):
    return sorted((child for child in node.called if child.process_class is MdCalculation), key=lambda n: n.ctime)


def test_two_walks_in_one_job_and_only_the_blown_up_one_continues(aiida_profile, mofal_codes):
    """Walk 1 at 40 fs blows up; the second job runs walk 1 alone at 20 fs from its last good frame."""
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.02, seed=5)
    overrides = {'ensemble': 'nvt', 'dump_every': 2, 'thermo_every': 2}
    walks = [{'timestep': 2.0, 'seed': 1, 'schedule': [{'steps': 10, 'temperature': 300.0}]},
             {'timestep': 40.0, 'seed': 2, 'schedule': [{'steps': 20, 'temperature': 300.0}]}]  # fmt: skip
    builder = MdBaseWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], orm.StructureData(ase=atoms), MaceModelData(MODEL, trusted=True),
        overrides=overrides, engine='ase', options=OPTIONS, walks=walks,
    )  # fmt: skip
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    first, second = md_jobs(node)
    assert first.exit_status == MdCalculation.exit_codes.ERROR_BLOWUP.status
    assert sorted(first.inputs.walks) == ['walk_0', 'walk_1'] and list(second.inputs.walks) == ['walk_1']
    assert 'compiled_model' in first.inputs and first.outputs.result['torch_threads'] == 1  # TorchScript, no mace
    assert second.inputs.walks.walk_1.settings['timestep'] == 20.0 and 'restart' in second.inputs.walks.walk_1
    steady, blown = results['walks']['walk_0']['trajectory'], results['walks']['walk_1']['trajectory']
    assert steady.base.attributes.get('walk') == 0 and steady.base.attributes.get('seed') == 1
    assert blown.base.attributes.get('walk') == 1 and blown.base.attributes.get('segments') == 2
    times = blown.get_array('times')
    assert np.all(np.diff(times) > 0) and times[-1] == pytest.approx(20 * 40.0)  # the protocol's time, two segments
    assert steady.get_array('times')[-1] == pytest.approx(20.0)
    assert results['walks']['walk_1']['integrity']['summary']['intact']


def test_reaxff_qeq_handler_raises_maxiter_for_real(aiida_profile, mofal_codes):
    """3 CG iterations cannot converge QEq at 1e-6; each next job gets 5 times more until the walk finishes."""
    structure = orm.StructureData(ase=read_structure('ZnIm2-sod_Lewis2009.cif'))
    overrides = {'dump_every': 10, 'schedule': [{'steps': 10, 'temperature': 300.0}]}
    builder = ReaxffMdWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], structure, 'nvt', overrides, force_field=FORCEFIELDS / 'ffield_ZnN_2016.reax',
        control=FORCEFIELDS / 'lmp_control.reax', qeq={'maxiter': 3},
    )  # fmt: skip
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    jobs = md_jobs(node)
    assert len(jobs) >= 2 and jobs[-1].is_finished_ok
    assert all(job.exit_status == MdCalculation.exit_codes.ERROR_QEQ_NOT_CONVERGED.status for job in jobs[:-1])
    assert [job.inputs.reaxff['qeq']['maxiter'] for job in jobs] == [3 * 5**k for k in range(len(jobs))]
    assert all(job.inputs.settings['timestep'] == 0.5 for job in jobs)  # more iterations, not a shorter step
    trajectory = results['trajectory']
    assert trajectory.engine == 'lammps-reaxff' and trajectory.get_array('steps').tolist() == [0, 10]
    assert results['charges'].get_array('charges').shape == (2, 102) and results['integrity']['summary']['intact']
