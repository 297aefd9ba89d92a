"""MeltQuenchWorkChain for real on the 102-atom Zn(Im)2 framework (1×1×1): ReaxFF through the command, MACE through
``lammps-python``, and a MACE run whose linkers break (the fallback is tried, then the named exit code).

The MACE model is random (H, C, N, Zn; built by ``tests/mlp/mace_models.py``): no trained model of the session knows
Zn. Its forces hold nothing together, so the intact run lasts a few fs (0.1 fs steps) and shows the plumbing (five
stages, restarts, TorchScript, analysis); the breaking run uses 0.5 fs steps, where the random forces tear C–H bonds.
"""

import json

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import pytest
from aiida import orm
from aiida.engine import run_get_node
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.workchains.md import MdBaseWorkChain
from aiida_mofal.workchains.melt_quench import MeltQuenchWorkChain
from tests.structure_files import DATA, read_structure

pytestmark = pytest.mark.engine
ZIF = DATA / 'ZnIm2-sod_Lewis2009.cif'
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': 1}}
FEW_FS = {'timestep': 0.1, 'hot_timestep': 0.1, 'equilibration': 0.001, 'rate': 1.2e6, 'plateau': 0.001,
          'final': 0.002, 'frame_every': 0.5, 'measure_frame_every': 0.5, 'thermo_every': 0.5}  # fmt: skip
"""The smoke stages in 1 fs each (0.1 fs steps): 10 steps per stage, 60 in all."""


@pytest.fixture(scope='module')
def zif_model(aiida_profile, tmp_path_factory):
    from tests.mlp.mace_models import build_mace_model

    path = build_mace_model(tmp_path_factory.mktemp('zif-model') / 'zif.model', atomic_numbers=(1, 6, 7, 30),
                            hidden_irreps='8x0e', r_max=4.0, num_interactions=1)  # fmt: skip
    return MaceModelData(path, trusted=True).store()


@pytest.fixture(scope='module')
def tearing_model(aiida_profile, tmp_path_factory):
    """The random model with its energies (and forces) 100 times larger: it tears the linkers apart in a few fs."""
    import torch

    from tests.mlp.mace_models import build_mace_model

    path = build_mace_model(tmp_path_factory.mktemp('tearing-model') / 'tearing.model', atomic_numbers=(1, 6, 7, 30),
                            hidden_irreps='8x0e', r_max=4.0, num_interactions=1)  # fmt: skip
    model = torch.load(path, weights_only=False)
    model.scale_shift.scale.fill_(100.0)
    torch.save(model, path)
    return MaceModelData(path, trusted=True).store()


def stage_children(node) -> dict:
    """The stage work chains of ``node`` by call label (``replica_<k>_<stage>[_fallback]``)."""
    from aiida.common import LinkType

    return {link.link_label: link.node for link in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all()}


def test_reaxff_smoke_through_the_command(mofal_codes):
    """`mofal melt-quench --reaxff --protocol smoke --json`, shortened to 160 steps: five ReaxFF stages, an integrity
    record, an analysis."""
    shorter = ['rate=60000', 'equilibration=0.01', 'plateau=0.01', 'final=0.02', 'frame_every=5',
               'measure_frame_every=2.5', 'thermo_every=2.5']  # fmt: skip
    arguments = ['melt-quench', str(ZIF), '--reaxff', '--protocol', 'smoke', '--supercell', '1', '1', '1', '--json']
    result = CliRunner().invoke(cmd_root, [*arguments, *(f'--override={value}' for value in shorter)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    node = orm.load_node(summary['pk'])
    assert node.is_finished_ok and node.process_label == 'MeltQuenchWorkChain'
    glass = summary['glasses']['replica_0']
    integrity, analysis = glass['integrity'], glass['analysis']
    assert sorted(integrity['stages']) == sorted(['equilibrate', 'heat', 'plateau', 'quench', 'measure'])
    assert integrity['intact'] and not integrity['fallback_used'] and integrity['n_reference_bonds'] > 0
    assert analysis['n_atoms'] == 102 and analysis['n_frames'] == glass['num_frames'] == 9  # 20 fs, 2.5 fs apart
    assert 3.0 < analysis['coordination']['Zn-N'] <= 4.0 and 1.8 < analysis['rdf']['Zn-N']['first_peak'] < 2.3
    assert analysis['reference']['density_ratio'] == pytest.approx(1.0)  # NVT: the crystal's volume
    steps = [child.outputs.trajectory.base.attributes.get('completed_steps') for child in stage_children(node).values()]
    assert sorted(steps) == sorted([20, 40, 20, 40, 40])
    print(json.dumps({'integrity': integrity['stages']['measure'], 'coordination': analysis['coordination'],
                      'rings': analysis['rings'], 'density_g_cm3': analysis['density_g_cm3']}))  # fmt: skip


def test_mace_lammps_python_five_stages(mofal_codes, zif_model):
    structure = orm.StructureData(ase=read_structure('ZnIm2-sod_Lewis2009.cif'))
    builder = MeltQuenchWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], structure, zif_model, protocol='smoke', overrides=FEW_FS,
        engine='lammps-python', supercell=(1, 1, 1), options=OPTIONS,
    )  # fmt: skip
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    glass = results['glasses']['replica_0']
    assert glass['integrity']['intact'] and glass['trajectory'].engine == 'lammps-python'
    assert glass['trajectory'].num_frames == 5 and glass['structure'].get_ase().get_chemical_formula() == 'C36H36N24Zn6'
    children = sorted(stage_children(node).values(), key=lambda child: child.ctime)
    assert [child.process_class for child in children] == [MdBaseWorkChain] * 5
    assert 'restart' not in children[0].inputs.md and all('restart' in child.inputs.md for child in children[1:])
    assert glass['analysis']['coordination']['Zn-N'] == pytest.approx(4.0)


def test_broken_linkers_end_with_the_named_exit_code_after_the_fallback(mofal_codes, tearing_model):
    """The heating tears linkers (engine ase, no blow-up limit: the frames show it), the fallback tears them again."""
    structure = orm.StructureData(ase=read_structure('ZnIm2-sod_Lewis2009.cif'))
    overrides = {**FEW_FS, 'timestep': 0.5, 'hot_timestep': 0.5, 'equilibration': 0.0, 'rate': 1.2e5,
                 'blowup_temperature': 1.0e9, 'fallback': {'max_temperature': 1400.0, 'rate': 1.1e5}}  # fmt: skip
    builder = MeltQuenchWorkChain.get_builder_from_protocol(
        mofal_codes['python-mace'], structure, tearing_model, protocol='smoke', overrides=overrides,
        engine='ase', supercell=(1, 1, 1), options=OPTIONS,
    )  # fmt: skip
    builder.max_halvings = orm.Int(0)
    _, node = run_get_node(builder)
    assert node.exit_status == MeltQuenchWorkChain.exit_codes.ERROR_LINKER_BROKEN.status
    assert 'replica 0, stage heat' in node.exit_message and 'non-metal bond(s)' in node.exit_message
    assert '(no fallback is left)' in node.exit_message
    labels = sorted(stage_children(node))
    assert labels == ['replica_0_heat', 'replica_0_heat_fallback']
    fallback = stage_children(node)['replica_0_heat_fallback']
    assert fallback.inputs.md.settings['schedule'][0]['temperature'] == [300.0, 1400.0]
    assert 'restart' not in fallback.inputs.md  # no equilibration stage: the fallback starts from the crystal
    print(node.exit_message)
