"""``mofal.relax.base`` for real on the EMT-copper MACE model: a relaxation that stays unconverged at the limit.

One job of two FIRE steps (``max_iterations`` 1, ``max_steps`` 2) cannot relax a rattled, compressed copper cell:
the work chain must end ``ERROR_MAXIMUM_ITERATIONS_EXCEEDED`` with the geometry, forces and record it reached
(``result['converged']`` false), not with no outputs.
"""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.workchains.relax import MaceRelaxWorkChain

from .md_driver import MODEL

pytestmark = pytest.mark.engine


def test_unconverged_at_max_iterations_ends_401_with_the_last_geometry(aiida_profile, mofal_codes):
    model = MaceModelData(MODEL, trusted=True).store()
    atoms = bulk('Cu', 'fcc', a=3.5, cubic=True)
    atoms.rattle(0.05, seed=2)
    structure = orm.StructureData(ase=atoms).store()
    builder = MaceRelaxWorkChain.get_builder_for(mofal_codes['python-mace'], {'cell': structure}, model,
                                                 {'mode': 'full', 'fmax': 1e-4, 'max_steps': 2},
                                                 max_iterations=1)  # fmt: skip
    outputs, node = run_get_node(builder)
    assert node.exit_status == MaceRelaxWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status
    result = outputs['result']
    assert result['converged'] is False and result['unconverged'] == ['cell'] and result['jobs'] == 1
    record = result['structures']['cell']
    assert record['steps'] == 2 and not record['converged'] and record['max_force_eV_A'] > 1e-4
    relaxed = outputs['structures']['cell']
    assert relaxed.get_cell_volume() != pytest.approx(structure.get_cell_volume(), rel=1e-9)  # it moved
    assert outputs['forces']['cell'].get_array('forces').shape == (4, 3)
