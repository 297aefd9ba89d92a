"""MaceRelaxWorkChain: the builder's refusals and the step-limit handler against a fake finished child."""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import pytest
from aiida import orm
from aiida.common import LinkType
from ase.build import bulk
from plumpy import ProcessState

from aiida_mofal.calculations.relax import MaceRelaxCalculation
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.workchains.relax import MaceRelaxWorkChain, join_relax_results
from tests.conftest import ROOT

from .md_children import instantiate


@pytest.fixture(scope='module')
def cu_model(aiida_profile):
    return MaceModelData(ROOT / 'tests' / 'data_files' / 'md' / 'cu_emt_tiny.model', trusted=True).store()


def _cells():
    cells = {}
    for name, a in (('a', 3.55), ('b', 3.65)):
        atoms = bulk('Cu', 'fcc', a=a, cubic=True)
        atoms.rattle(0.05, seed=1)
        cells[name] = orm.StructureData(ase=atoms).store()
    return cells


def _record(converged: bool, steps: int = 5) -> dict:
    return {'energy_eV': -14.0, 'volume_A3': 46.0, 'stress_eV_A3': [0.0] * 6, 'pressure_GPa': 0.0, 'steps': steps,
            'converged': converged, 'max_force_eV_A': 0.1, 'max_generalised_force_eV_A': 0.1, 'seconds': 0.1,
            'num_atoms': 4}  # fmt: skip


def _child(process, computer, converged: dict) -> orm.CalcJobNode:
    """A finished relax job that left ``converged`` (name -> bool) as it says, with exit 401 when any did not."""
    node = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:mofal.relax')
    node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(0 if all(converged.values()) else MaceRelaxCalculation.exit_codes.ERROR_NOT_CONVERGED.status)
    node.store()
    outputs = {'result': orm.Dict({'structures': {n: _record(c) for n, c in converged.items()}, 'status': 'done'})}
    for name in converged:
        atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
        outputs[f'structures__{name}'] = orm.StructureData(ase=atoms)
        outputs[f'forces__{name}'] = orm.ArrayData()
    for label, output in outputs.items():
        output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
        output.store()
    process.ctx.iteration = 1
    process.ctx.children = [node]
    return node


def test_refusals_name_the_problem(mofal_codes, cu_model):
    code = mofal_codes['python-mace']
    oxide = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6) * (2, 1, 1))
    oxide_atoms = oxide.get_ase()
    oxide_atoms[0].symbol = 'O'
    with pytest.raises(ValueError, match='O'):
        MaceRelaxWorkChain.get_builder_for(code, {'x': orm.StructureData(ase=oxide_atoms)}, cu_model)
    with pytest.raises(ValueError, match='relaxation mode'):
        MaceRelaxWorkChain.get_builder_for(code, _cells(), cu_model, {'mode': 'volume'})


def test_unconverged_structures_continue_from_where_they_stopped(mofal_codes, cu_model, localhost):
    builder = MaceRelaxWorkChain.get_builder_for(mofal_codes['python-mace'], _cells(), cu_model, {'mode': 'shape'})
    builder.torchscript = orm.Bool(False)
    process = instantiate(builder)
    child = _child(process, localhost, {'a': True, 'b': False})
    report = process.handle_not_converged(child)
    assert report.do_break and not report.exit_code.status
    assert list(process.ctx.inputs.structures) == ['b']  # only the unconverged one runs again
    assert process.ctx.inputs.structures['b'].pk == child.outputs.structures.b.pk  # from its relaxed geometry
    assert set(process.ctx.relaxed) == {'a', 'b'}


def test_records_of_consecutive_jobs_join_with_steps_added(aiida_profile):
    first = orm.Dict({'structures': {'a': _record(True, 5), 'b': _record(False, 5)}, 'status': 'done'})
    second = orm.Dict({'structures': {'b': _record(True, 3)}, 'status': 'done'})
    joined = join_relax_results(result_0=first, result_1=second)
    assert joined['structures']['b']['steps'] == 8 and joined['structures']['b']['converged']
    assert joined['structures']['a']['steps'] == 5 and joined['jobs'] == 2
    assert joined['converged'] and joined['unconverged'] == []


def test_at_max_iterations_the_last_geometries_are_attached_with_converged_false(mofal_codes, cu_model, localhost):
    """No next job at the limit: the work chain ends 401 with every structure's last outputs (not with none)."""
    builder = MaceRelaxWorkChain.get_builder_for(mofal_codes['python-mace'], _cells(), cu_model, {'mode': 'shape'},
                                                 max_iterations=1)  # fmt: skip
    builder.torchscript = orm.Bool(False)
    process = instantiate(builder)
    child = _child(process, localhost, {'a': True, 'b': False})
    report = process.handle_not_converged(child)
    exceeded = MaceRelaxWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED
    assert report.do_break and report.exit_code.status == exceeded.status
    assert process.ctx.is_finished  # BaseRestartWorkChain.inspect_process then ends with the report's exit code
    outputs = process.outputs
    assert set(outputs['structures']) == {'a', 'b'} and set(outputs['forces']) == {'a', 'b'}
    assert outputs['structures']['b'].pk == child.outputs.structures.b.pk
    result = outputs['result']
    assert result['converged'] is False and result['unconverged'] == ['b'] and result['jobs'] == 1
    assert result['structures']['a']['converged'] and not result['structures']['b']['converged']
