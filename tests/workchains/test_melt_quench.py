"""MeltQuenchWorkChain: the builder, refusals before submission, and ``handle_broken_linkers`` against fake stages."""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import pytest
from aiida import orm
from ase.build import bulk

from aiida_mofal.calculations import reaxff
from aiida_mofal.calculations.melt_quench import stage_integrity
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.protocols import ProtocolError
from aiida_mofal.workchains.melt_quench import MeltQuenchWorkChain
from tests.engines.md_driver import FORCEFIELDS, MODEL
from tests.structure_files import read_structure

from .md_children import instantiate, restart_file


@pytest.fixture(scope='module')
def zif(aiida_profile):
    return orm.StructureData(ase=read_structure('ZnIm2-sod_Lewis2009.cif')).store()


@pytest.fixture(scope='module')
def force_field(aiida_profile):
    return reaxff.force_field(FORCEFIELDS / 'ffield_ZnN_2016.reax')


def reaxff_builder(code, structure, force_field, **kwargs):
    return MeltQuenchWorkChain.get_builder_from_protocol(
        code, structure, force_field=force_field, supercell=(1, 1, 1), **kwargs
    )


def test_builder_from_protocol(mofal_codes, zif, force_field):
    builder = reaxff_builder(mofal_codes['python-mace'], zif, force_field, protocol='smoke', replicas=2)
    assert builder.engine.value == 'lammps-reaxff' and builder.replicas.value == 2
    assert builder.parameters['protocol'] == 'smoke' and builder.parameters['fallback']['max_temperature'] == 1400.0
    assert builder.supercell.get_list() == [1, 1, 1] and builder.reaxff['minimize'] is None
    paper = MeltQuenchWorkChain.get_builder_from_protocol(mofal_codes['python-mace'], zif, force_field=force_field)
    assert paper.supercell.get_list() == [2, 2, 2] and paper.parameters['plateau'] == 50.0


def test_bad_input_is_refused_before_submission(mofal_codes, zif, force_field):
    code = mofal_codes['python-mace']
    copper = MaceModelData(MODEL, trusted=True)  # a Cu-only model
    with pytest.raises(ProtocolError, match='wrong units'):
        reaxff_builder(code, zif, force_field, overrides={'max_temperature': 15000.0})
    metal = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True))
    with pytest.raises(ValueError, match='has no Zn and no N: this melt-quench protocol is for Zn-N networks'):
        MeltQuenchWorkChain.get_builder_from_protocol(code, metal, force_field=force_field)
    with pytest.raises(ValueError, match=r'the 2x2x2 supercell of .* \(816 atoms\) contains C, H, N, Zn, which MACE'):
        MeltQuenchWorkChain.get_builder_from_protocol(code, zif, copper)
    with pytest.raises(ValueError, match='no MACE model'):
        MeltQuenchWorkChain.get_builder_from_protocol(code, zif, copper, force_field=force_field)
    with pytest.raises(ValueError, match='replicas must be a positive'):
        reaxff_builder(code, zif, force_field, replicas=0)
    builder = reaxff_builder(code, zif, force_field)  # the launch validator says the same
    builder.parameters = orm.Dict({**builder.parameters.get_dict(), 'max_temperature': 15000.0})
    assert 'wrong units' in MeltQuenchWorkChain.spec().inputs.validator(builder._inputs(prune=True), None)


def _trajectory(structure: orm.StructureData, stretch: float = 0.0) -> MdTrajectoryData:
    """Two frames of ``structure``; the second with atom 0's first non-metal bond stretched by ``stretch`` Å."""
    import numpy as np

    from aiida_mofal.structures.bonds import bond_graph

    atoms = structure.get_ase()
    positions = np.repeat(atoms.positions[None], 2, axis=0)
    if stretch:
        graph = bond_graph(atoms)
        i, j = next((i, j) for i, j in zip(graph.i, graph.j) if atoms[i].symbol == 'C' and atoms[j].symbol == 'H')
        vector = atoms.get_distance(i, j, mic=True, vector=True)
        positions[1, j] += stretch * vector / np.linalg.norm(vector)
    arrays = {'steps': np.array([0, 10]), 'times': np.array([0.0, 5.0]), 'positions': positions,
              'cells': np.repeat(atoms.cell.array[None], 2, axis=0)}  # fmt: skip
    return MdTrajectoryData(arrays, numbers=atoms.numbers, pbc=atoms.pbc, engine='lammps-reaxff', timestep=0.5)


def test_stage_integrity_names_the_broken_bond(zif):
    policy = orm.Dict({'fail_on_formed': True})
    assert not stage_integrity(zif, _trajectory(zif), policy)['failed']
    record = stage_integrity(zif, _trajectory(zif, stretch=2.0), policy)
    assert record['failed'] and record['failure_reason'].startswith('1 non-metal bond(s) broken')
    assert 'C-H [' in record['failure_reason'] and '(frame 1)' in record['failure_reason']


def test_handle_broken_linkers_retries_once_with_the_fallback(mofal_codes, zif, force_field):
    process = instantiate(reaxff_builder(mofal_codes['python-mace'], zif, force_field, protocol='smoke'))
    replica = process.ctx.replicas[0]
    assert replica['stages'] == ['equilibrate', 'heat', 'plateau', 'quench', 'measure']
    equilibrated = (orm.StructureData(ase=zif.get_ase()).store(), restart_file().store())
    replica.update(position=2, equilibrated=equilibrated, records={'equilibrate': orm.Dict({'x': 1}).store()})
    broken = stage_integrity(zif, _trajectory(zif, stretch=2.0), orm.Dict({'fail_on_formed': True}))

    process.handle_broken_linkers(replica, 'plateau', broken)
    replica = process.ctx.replicas[0]
    assert replica['state'] == 'running' and replica['fallback'] is True
    assert replica['parameters']['max_temperature'] == 1400.0 and replica['parameters']['plateau'] == 0.3
    assert replica['stages'][replica['position']] == 'heat' and replica['structure'] is equilibrated[0]
    assert replica['restart'] is equilibrated[1] and list(replica['records']) == ['equilibrate']
    assert replica['settings']['plateau']['schedule'][0]['temperature'] == [1400.0, 1400.0]

    process.handle_broken_linkers(replica, 'quench', broken)  # the fallback broke too: no second fallback
    assert replica['state'] == 'broken' and 'no fallback is left' in replica['message']
    assert [attempt['stage'] for attempt in process.ctx.attempts] == ['plateau', 'quench']
    assert [attempt['max_temperature'] for attempt in process.ctx.attempts] == [1500.0, 1400.0]
    exit_code = process.results()
    assert exit_code.status == MeltQuenchWorkChain.exit_codes.ERROR_LINKER_BROKEN.status
    assert 'replica 0, stage quench' in exit_code.message and 'C-H [' in exit_code.message


def test_a_linker_broken_at_300_K_is_not_retried(mofal_codes, zif, force_field):
    process = instantiate(reaxff_builder(mofal_codes['python-mace'], zif, force_field, protocol='smoke'))
    replica = process.ctx.replicas[0]
    broken = stage_integrity(zif, _trajectory(zif, stretch=2.0), orm.Dict({'fail_on_formed': True}))
    process.handle_broken_linkers(replica, 'equilibrate', broken)
    assert replica['state'] == 'broken' and 'it broke in the equilibration' in replica['message']


def test_mace_builder_checks_elements(mofal_codes, zif, tmp_path):
    from tests.mlp.mace_models import build_mace_model

    model = MaceModelData(
        build_mace_model(tmp_path / 'zif.model', atomic_numbers=(1, 6, 7, 30), hidden_irreps='8x0e'), trusted=True
    )
    builder = MeltQuenchWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], zif, model, protocol='smoke', engine='ase', supercell=(1, 1, 1)
    )
    assert builder.engine.value == 'ase' and 'force_field' not in builder
