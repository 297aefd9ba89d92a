"""`mofal rerun`: a campaign's stored inputs moved to another computer, and a study run again there for real.

"Another computer" is a second ``core.local`` computer with the codes `mofal setup` makes (same labels), so the
move of codes, settings and options is exercised without a cluster; the SLURM computer of
``examples/computers/slurm-localhost.yaml`` is the same call with its label.
"""

import json

import pytest
import yaml
from aiida import orm
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from tests.conftest import ROOT

EXAMPLES = ROOT / 'examples'
STRUCTURES = ROOT / 'tests' / 'data_files' / 'structures'


@pytest.fixture(scope='module')
def elsewhere(localhost, tmp_path_factory):
    """A second local computer, ``elsewhere``, with ``cp2k``, ``lammps`` and ``python-mace`` codes."""
    from aiida.common.exceptions import NotExistent

    from aiida_mofal.environment.localhost import ensure_codes

    try:
        computer = orm.load_computer('elsewhere')
    except NotExistent:
        computer = orm.Computer(
            label='elsewhere',
            hostname='localhost',
            transport_type='core.local',
            scheduler_type='core.direct',
            workdir=str(tmp_path_factory.mktemp('elsewhere')),
        ).store()
        computer.set_mpirun_command(localhost.get_mpirun_command())
        computer.set_default_mpiprocs_per_machine(localhost.get_default_mpiprocs_per_machine())
        computer.configure()
    ensure_codes(computer)
    return computer


def _invoke(*args):
    return CliRunner().invoke(cmd_root, [str(arg) for arg in args])


def test_a_campaign_moves_its_codes_and_settings_to_another_computer(mofal_codes, elsewhere):
    from aiida_mofal.workchains.campaign import ClusterCampaignWorkChain
    from aiida_mofal.workchains.rerun import campaign_rerun_builder

    campaign = yaml.safe_load((EXAMPLES / 'campaign_znim2.yaml').read_text())
    builder = ClusterCampaignWorkChain.get_builder_from_protocol(
        None, {'znim2': STRUCTURES / 'ZnIm2-sod_Lewis2009.cif'}, overrides={'resources': campaign['resources']}
    )
    inputs = {key: builder[key] for key in builder if key != 'metadata'}
    node = instantiate_process(get_manager().get_runner(), ClusterCampaignWorkChain, **inputs).node  # stored inputs
    check = _invoke('rerun', node.pk, '--computer', 'elsewhere', '--check', '--json')
    assert check.exit_code == 0, check.output
    plan = json.loads(check.stdout)
    assert plan['kind'] == 'campaign' and {code.rsplit('@')[1] for code in plan['codes']} == {'elsewhere'}
    moved = campaign_rerun_builder(node, 'elsewhere')
    resources = moved.settings['resources']
    assert {resources[step]['code'] for step in ('cp2k', 'train', 'md')} == {
        f'{name}@elsewhere' for name in ('cp2k', 'python-mace')
    }
    assert moved.cp2k_code.computer.label == 'elsewhere'
    assert moved.targets['znim2'].uuid == node.inputs.targets.znim2.uuid
    assert moved.settings['label'] == node.inputs.settings['label']  # only resources change
    nowhere = _invoke('rerun', node.pk, '--computer', 'nowhere', '--check')
    assert nowhere.exit_code != 0 and 'no code cp2k@nowhere' in nowhere.output and 'md_code' in nowhere.output


def test_a_study_runs_again_on_another_computer_with_the_same_results(mofal_codes, elsewhere, tiny_mace_model_file,
                                                                      tmp_path):  # fmt: skip
    from aiida_mofal.data import MaceModelData

    model = MaceModelData(tiny_mace_model_file, trusted=True).store()
    campaign = yaml.safe_load((EXAMPLES / 'campaign_zif4_tiny.yaml').read_text())
    campaign['targets'][0]['structure'] = str(STRUCTURES / 'ZIF-4_Lewis2009.cif')
    (tmp_path / 'campaign.yaml').write_text(yaml.safe_dump(campaign))
    glass = {'structures': [str(STRUCTURES / 'ZIF-4_glass01_Gaillac2020.cif')], 'settings': {'rings': False}}
    study = {'name': 'zif4-rerun', 'campaign': {'file': 'campaign.yaml'}, 'glass_analysis': glass}
    (tmp_path / 'study.yaml').write_text(yaml.safe_dump(study))
    first = _invoke('study', tmp_path / 'study.yaml', '--model', model.pk, '--json')
    assert first.exit_code == 0, first.output
    original = orm.load_node(json.loads(first.stdout)['pk'])
    again = _invoke('rerun', original.uuid, '--computer', 'elsewhere', '--json')
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary['rerun_of'] == original.pk and summary['exit_status'] == 0
    assert summary['codes'] == ['python-mace@elsewhere']
    rerun = orm.load_node(summary['pk'])
    assert rerun.pk != original.pk and rerun.process_label == original.process_label

    def rows(node):
        (table,) = [n for n in node.called_descendants if n.process_label == 'study_summary']
        return table.outputs.result.get_dict()['rows']

    def computers(node):  # of the code inputs of the study's analysis task (a graph task: a WorkGraph node)
        (task,) = [n for n in node.called if n.base.links.get_incoming().all()[0].link_label == 'analysis']
        nodes = [link.node for link in task.base.links.get_incoming().all()]  # graph_inputs__code among them
        return {node.computer.label for node in nodes if isinstance(node, orm.AbstractCode)}

    assert rows(rerun) == rows(original)
    assert computers(rerun) == {'elsewhere'} and computers(original) == {'localhost'}


def test_a_study_with_a_campaign_moves_the_campaign_task_with_its_settings(mofal_codes, elsewhere, tmp_path):
    """The campaign task of a study (saved, not run: a campaign takes minutes) gets codes and resources there."""
    from aiida_mofal.study.config import load_study
    from aiida_mofal.workchains.rerun import study_rerun_graph
    from aiida_mofal.workchains.study import build_study_graph

    campaign = yaml.safe_load((EXAMPLES / 'campaign_zif4_tiny.yaml').read_text())
    campaign['targets'][0]['structure'] = str(STRUCTURES / 'ZIF-4_Lewis2009.cif')
    (tmp_path / 'campaign.yaml').write_text(yaml.safe_dump(campaign))
    study = {'name': 's', 'campaign': {'file': 'campaign.yaml'}, 'eos': {'structures': ['crystal']}}
    (tmp_path / 'study.yaml').write_text(yaml.safe_dump(study))
    graph = build_study_graph(load_study(tmp_path / 'study.yaml'))
    graph.save()  # the WorkGraph node with its tasks' inputs, as a run stores it
    moved = study_rerun_graph(graph.process, 'elsewhere')
    inputs = moved.tasks['campaign'].inputs._value
    assert {inputs[key].full_label for key in ('cp2k_code', 'train_code', 'md_code')} == {
        'cp2k@elsewhere',
        'python-mace@elsewhere',
    }
    assert inputs['settings']['resources']['cp2k']['code'] == 'cp2k@elsewhere'
    assert moved.tasks['analysis'].inputs._value['code'].computer.label == 'elsewhere'
    assert moved.process is None  # a new run, not the saved one
