"""ReaxffMdWorkChain: the builder (checks before anything runs) and handle_qeq_not_converged against a fake child."""

import pytest
from aiida import orm

from aiida_mofal.calculations.md import MdCalculation
from aiida_mofal.md.reaxff import MINIMIZE_DEFAULTS, QEQ_DEFAULTS
from aiida_mofal.protocols import ProtocolError
from aiida_mofal.workchains.reaxff import MAX_QEQ_ITERATIONS, ReaxffMdWorkChain
from tests.conftest import ROOT
from tests.structure_files import read_structure

from .md_children import attach_child, instantiate

FORCEFIELDS = ROOT / 'tests' / 'data_files' / 'forcefields'
FFIELD, CONTROL = FORCEFIELDS / 'ffield_ZnN_2016.reax', FORCEFIELDS / 'lmp_control.reax'
OVERRIDES = {'dump_every': 10, 'schedule': [{'steps': 100, 'temperature': 300.0}]}


@pytest.fixture(scope='module')
def zif(aiida_profile):
    return orm.StructureData(ase=read_structure('ZnIm2-sod_Lewis2009.cif')).store()


def builder(mofal_codes, structure, protocol='nvt', overrides=None, **kwargs):
    return ReaxffMdWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], structure, protocol, overrides, force_field=FFIELD, **kwargs
    )


def test_builder_from_protocol(mofal_codes, zif):
    nvt = builder(mofal_codes, zif, overrides=OVERRIDES, control=CONTROL, qeq={'tolerance': 1e-8})
    assert nvt.md.engine.value == 'lammps-reaxff' and 'model' not in nvt.md
    assert nvt.md.reaxff['qeq'] == {**QEQ_DEFAULTS, 'tolerance': 1e-8} and nvt.md.reaxff['minimize'] is None
    assert nvt.md.force_field.filename == 'ffield.reax' and nvt.md.control.filename == 'control.reax'
    melt = builder(mofal_codes, zif, 'melt_quench', minimize=True)
    assert len(melt.md.settings['schedule']) == 5 and melt.md.reaxff['minimize'] == MINIMIZE_DEFAULTS
    relax = builder(mofal_codes, zif, 'minimize')
    assert 'settings' not in relax.md and relax.md.reaxff['minimize'] == MINIMIZE_DEFAULTS
    walks = builder(mofal_codes, zif, overrides=OVERRIDES, walks=[{'seed': 1}, {'seed': 2}])
    assert sorted(walks.md.walks) == ['walk_0', 'walk_1']


def test_builder_refuses_what_cannot_run(mofal_codes, zif, aiida_profile):
    from ase.build import molecule

    with pytest.raises(ProtocolError, match='temprature'):
        builder(mofal_codes, zif, overrides={'temprature': 300.0})
    with pytest.raises(ValueError, match='unknown ReaxFF qeq parameters'):
        builder(mofal_codes, zif, qeq={'max_iter': 5})
    with pytest.raises(ValueError, match='periodic cells only'):
        builder(mofal_codes, orm.StructureData(ase=molecule('CH4', vacuum=5.0, pbc=False)))
    uio = orm.StructureData(ase=read_structure('UiO-66-Zr_Trousselet2016.cif'))
    with pytest.raises(ValueError, match=r"no parameters for \['Zr'\]"):
        builder(mofal_codes, uio)
    with pytest.raises(ValueError, match='runs no MD'):
        builder(mofal_codes, zif, 'minimize', OVERRIDES)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        ReaxffMdWorkChain.get_builder_from_protocol(mofal_codes['python-mace'], zif, force_field='no/such/ffield')


def test_handle_qeq_not_converged_raises_maxiter_then_halves_the_timestep(mofal_codes, zif, aiida_localhost):
    process = instantiate(builder(mofal_codes, zif, overrides=OVERRIDES))
    qeq = MdCalculation.exit_codes.ERROR_QEQ_NOT_CONVERGED
    node = attach_child(process, aiida_localhost, qeq, [{'status': 'qeq_not_converged', 'completed': 20}])
    report = process.handle_qeq_not_converged(node)
    assert report.do_break and report.exit_code.status == 0
    walk = process.ctx.walks[0]
    assert process.ctx.inputs.reaxff['qeq']['maxiter'] == MAX_QEQ_ITERATIONS == 5 * QEQ_DEFAULTS['maxiter']
    assert walk['settings']['timestep'] == 0.5 and walk['settings']['schedule'][0]['steps'] == 80
    assert walk['restart'].uuid == node.outputs.restart.uuid
    # at the limit already: the same walk continues with half the timestep, up to max_halvings times
    node = attach_child(process, aiida_localhost, qeq, [{'status': 'qeq_not_converged', 'completed': 40}])
    process.handle_qeq_not_converged(node)
    assert walk['settings']['timestep'] == 0.25 and walk['halvings'] == 1 and walk['state'] == 'running'
    walk['halvings'] = process.inputs.max_halvings.value
    node = attach_child(process, aiida_localhost, qeq, [{'status': 'qeq_not_converged', 'completed': 10}])
    process.handle_qeq_not_converged(node)
    assert walk['state'] == 'qeq_not_converged' and process.ctx.is_finished
    exit_code = process._given_up([walk])
    assert exit_code.status == ReaxffMdWorkChain.exit_codes.ERROR_QEQ_UNRECOVERABLE.status


def test_lost_atoms_is_a_blowup_for_reaxff(mofal_codes, zif, aiida_localhost):
    process = instantiate(builder(mofal_codes, zif, overrides=OVERRIDES))
    lost = MdCalculation.exit_codes.ERROR_LOST_ATOMS
    node = attach_child(process, aiida_localhost, lost, [{'status': 'lost_atoms', 'completed': 30}])
    assert process.handle_qeq_not_converged(node) is None  # not its exit code
    process.handle_blowup(node)
    assert process.ctx.walks[0]['settings']['timestep'] == 0.25 and process.ctx.inputs.reaxff['qeq']['maxiter'] == 200
