"""`mofal study`: --check before anything is submitted (file, campaign, codes, entry points, structures), the task
graph it builds, and a real WorkGraph run of the analysis part on a given model (no campaign: `--model`)."""

import json

import pytest
import yaml
from aiida import orm
from aiida.plugins.entry_point import get_entry_point_names
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from tests.conftest import ROOT

EXAMPLES = ROOT / 'examples'
STRUCTURES = ROOT / 'tests' / 'data_files' / 'structures'


def _study(tmp_path, **sections):
    campaign = yaml.safe_load((EXAMPLES / 'campaign_zif4_tiny.yaml').read_text())
    campaign['targets'][0]['structure'] = str(STRUCTURES / 'ZIF-4_Lewis2009.cif')
    (tmp_path / 'campaign.yaml').write_text(yaml.safe_dump(campaign))
    study = {'name': 'zif4-test', 'campaign': {'file': 'campaign.yaml'}, 'concurrency': 3, **sections}
    (tmp_path / 'study.yaml').write_text(yaml.safe_dump(study))
    return tmp_path / 'study.yaml'


GLASS = {'structures': [str(STRUCTURES / 'ZIF-4_glass01_Gaillac2020.cif')], 'settings': {'rings': False}}


def test_check_of_the_shipped_studies_names_what_is_missing(mofal_codes):
    installed = get_entry_point_names('aiida.workflows')
    result = CliRunner().invoke(cmd_root, ['study', str(EXAMPLES / 'study_zif4_glass.yaml'), '--check', '--json'])
    if 'mofal.melt_quench' in installed:
        slots = {'melt_quench': 'mofal.melt_quench', 'eos': 'mofal.eos'}
        assert result.exit_code == 0 and json.loads(result.stdout)['slots'] == slots
    else:
        assert result.exit_code != 0 and 'needs the work chain `mofal.melt_quench`' in result.output
    paper = CliRunner().invoke(cmd_root, ['study', str(EXAMPLES / 'study_uio66_paper.yaml'), '--check'])
    assert paper.exit_code != 0 and "no code 'cp2k@slurm'" in paper.output  # the cluster's codes, not this profile's


def test_check_passes_a_study_main_can_run_and_submits_nothing(mofal_codes, tmp_path):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    path = _study(tmp_path, glass_analysis=GLASS, eos={'workflow': 'fit', 'structures': ['crystal', 'glasses']})
    result = CliRunner().invoke(cmd_root, ['study', str(path), '--check', '--json'])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan['valid'] and plan['tasks'] == ['campaign', 'analysis', 'summary'] and plan['slots'] == {}
    assert plan['structures']['ZIF_4_glass01_Gaillac2020']['atoms'] == 272
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_check_refuses_a_glass_with_elements_no_target_has(mofal_codes, tmp_path):
    path = _study(tmp_path, glass_analysis={'structures': [str(STRUCTURES / 'UiO-66-Hf_Trousselet2016.cif')]})
    result = CliRunner().invoke(cmd_root, ['study', str(path), '--check'])
    assert result.exit_code != 0 and 'holds Hf, O, which no campaign target has' in result.output


def test_the_graph_chains_campaign_analysis_and_summary_under_one_limit(mofal_codes, tmp_path):
    from aiida_mofal.study.config import load_study
    from aiida_mofal.workchains.study import build_study_graph

    graph = build_study_graph(load_study(_study(tmp_path, glass_analysis=GLASS, eos={'structures': ['crystal']})))
    assert [task.name for task in graph.tasks if not task.name.startswith('graph_')] == [
        'campaign',
        'analysis',
        'summary',
    ]
    assert graph.max_number_jobs == 3
    links = {
        (link.from_task.name, link.from_socket._name, link.to_task.name, link.to_socket._name) for link in graph.links
    }
    assert ('campaign', 'model', 'analysis', 'model') in links
    assert any(source == 'analysis' and target == 'summary' for source, _, target, _ in links)


def test_a_study_on_a_given_model_runs_its_graph_for_real(mofal_codes, tiny_mace_model_file, tmp_path):
    from aiida_mofal.data import MaceModelData

    model = MaceModelData(tiny_mace_model_file, trusted=True).store()
    reference = str(STRUCTURES / 'ZIF-4_glass01_Gaillac2020.cif')
    path = _study(tmp_path, glass_analysis={**GLASS, 'reference': reference})
    result = CliRunner().invoke(cmd_root, ['study', str(path), '--model', str(model.pk), '--json'])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary['tasks'] == ['analysis', 'summary'] and summary['exit_status'] == 0
    node = orm.load_node(summary['pk'])
    called = {child.base.links.get_incoming().all()[0].link_label for child in node.called_descendants}
    assert {'analysis', 'summary', 'glass_ZIF_4_glass01_Gaillac2020'} <= called
    dicts = [n for n in node.called_descendants if n.process_label == 'study_summary']
    (rows,) = [d.outputs.result.get_dict()['rows'] for d in dicts]
    assert rows[0]['density_g_cm3'] == pytest.approx(1.21, abs=0.01)
    report = CliRunner().invoke(cmd_root, ['report', node.uuid, '-o', str(tmp_path / 'report'), '--json'])
    assert report.exit_code == 0, report.output
    written = json.loads(report.stdout)
    assert written['summary'] == rows and (tmp_path / 'report' / 'glass_rdf.png').stat().st_size > 5000
    assert '<table>' in (tmp_path / 'report' / 'index.html').read_text()


def test_a_study_with_the_eos_work_chain_runs_it_for_real(mofal_codes, tmp_path):
    """`eos.workflow: mofal.eos`: the study adds the work chain as a task, runs it, and its B0 reaches the summary.

    A copper study on the committed EMT-copper MACE model (4 atoms: the relaxations take seconds), given by
    ``--model`` so that no campaign runs; the target is written as the campaign file's structure.
    """
    from ase.build import bulk

    from aiida_mofal.data import MaceModelData
    from tests.engines.md_driver import MODEL

    model = MaceModelData(MODEL, trusted=True).store()
    start = bulk('Cu', 'fcc', a=3.6, cubic=True)
    start.rattle(0.02, seed=1)
    start.write(tmp_path / 'cu.xyz', format='extxyz')
    campaign = yaml.safe_load((EXAMPLES / 'campaign_zif4_tiny.yaml').read_text())
    campaign['targets'] = [{'name': 'cu', 'structure': str(tmp_path / 'cu.xyz')}]
    (tmp_path / 'campaign.yaml').write_text(yaml.safe_dump(campaign))
    eos = {
        'workflow': 'mofal.eos',
        'structures': ['crystal'],
        'overrides': {'ev': {'points': 5, 'strain': 0.04, 'fmax': 0.01, 'optimizer': 'BFGS'}},
    }
    study = {'name': 'cu-eos', 'campaign': {'file': 'campaign.yaml'}, 'eos': eos}
    (tmp_path / 'study.yaml').write_text(yaml.safe_dump(study))
    check = CliRunner().invoke(cmd_root, ['study', str(tmp_path / 'study.yaml'), '--check', '--json'])
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)['slots'] == {'eos': 'mofal.eos'}
    result = CliRunner().invoke(cmd_root, ['study', str(tmp_path / 'study.yaml'), '--model', str(model.pk), '--json'])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary['exit_status'] == 0, summary
    node = orm.load_node(summary['pk'])
    (eos,) = [n for n in node.called_descendants if n.process_label == 'EquationOfStateWorkChain']
    assert eos.is_finished_ok and eos.inputs.structure.get_ase().get_chemical_formula() == 'Cu4'
    (table,) = [n for n in node.called_descendants if n.process_label == 'study_summary']
    (row,) = table.outputs.result.get_dict()['rows']
    assert row['structure'] == 'crystal' and row['B0_GPa'] == pytest.approx(eos.outputs.ev['B0_GPa'])
    assert row['B0_GPa'] > 0 and row['V0_A3'] == pytest.approx(eos.outputs.ev['V0_A3'])
    report = CliRunner().invoke(cmd_root, ['report', node.uuid, '-o', str(tmp_path / 'report'), '--json'])
    assert report.exit_code == 0, report.output
    assert (tmp_path / 'report' / 'eos_crystal.png').read_bytes()[:4] == b'\x89PNG'
    assert 'mofal.eos ev' in (tmp_path / 'report' / 'index.html').read_text()


def test_check_refuses_mistyped_melt_quench_and_eos_settings(mofal_codes, tmp_path):
    """Settings of the slots are checked by --check too: a typo fails before the campaign, not hours later."""
    melt = {'glasses': 1, 'protocol': 'smoke', 'overrides': {'max_temprature': 900.0}}
    eos = {'workflow': 'mofal.eos', 'structures': ['crystal'], 'overrides': {'ev': {'point': 5}, 'pv': {}}}
    result = CliRunner().invoke(cmd_root, ['study', str(_study(tmp_path, melt_quench=melt, eos=eos)), '--check'])
    assert result.exit_code != 0
    assert "melt_quench.overrides: unknown override 'max_temprature'. Did you mean 'max_temperature'?" in result.output
    assert "eos.overrides: settings for ['pv'], which are not among eos.methods" in result.output
    assert "eos.overrides.ev: unknown ev settings ['point']" in result.output
