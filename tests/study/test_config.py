"""The study file: strict keys with line numbers and suggestions, files relative to the study, cross-checks."""

import pytest

from aiida_mofal.study.config import StudyFileError, load_study, parse_study
from tests.conftest import ROOT

EXAMPLES = ROOT / 'examples'


def test_the_shipped_studies_parse_with_their_campaign_files():
    tiny = load_study(EXAMPLES / 'study_zif4_glass.yaml')
    assert tiny.settings.melt_quench.glasses == 2 and tiny.settings.eos.workflow == 'mofal.eos'
    assert list(tiny.campaign.targets) == ['zif4'] and tiny.reference.name == 'ZIF-4_glass01_Gaillac2020.cif'
    paper = load_study(EXAMPLES / 'study_uio66_paper.yaml')
    assert paper.settings.eos.workflow == 'mofal.eos' and paper.settings.cost['cp2k_node_hours'] == 2000
    assert paper.campaign.settings.extract.max_clusters == 150


def test_a_typo_names_the_line_and_the_key_it_meant():
    text = (EXAMPLES / 'study_zif4_glass.yaml').read_text().replace('  glasses: 2', '  glases: 2')
    with pytest.raises(StudyFileError, match=r"study:13: melt_quench.glases: unknown key \(did you mean 'glasses'\?\)"):
        parse_study(text, 'study', EXAMPLES)


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        (('campaign_zif4_tiny.yaml', 'nowhere.yaml'), 'campaign.file: nowhere.yaml not found'),
        (('target: zif4', 'target: zif8'), "melt_quench.target: 'zif8' is not a campaign target"),
        (('workflow: mofal.eos ', 'workflow: eos '), 'eos.workflow: Input should be'),
        (('ZIF-4_glass01', 'ZIF-9_glass01'), 'glass_analysis.reference: ../tests/data_files/structures/ZIF-9'),
        (('concurrency: 2 ', 'concurrency: 0 '), 'concurrency: Input should be greater than or equal to 1'),
    ],
)
def test_bad_values_and_missing_files_are_refused_before_anything_runs(change, message):
    text = (EXAMPLES / 'study_zif4_glass.yaml').read_text().replace(*change)
    with pytest.raises(StudyFileError, match=message):
        parse_study(text, 'study', EXAMPLES)


def test_campaign_file_errors_come_through_with_their_own_file_and_line(tmp_path):
    campaign = (EXAMPLES / 'campaign_zif4_tiny.yaml').read_text().replace('max_cycles: 1', 'max_cycle: 1')
    campaign = campaign.replace('../tests', str(ROOT / 'tests'))
    (tmp_path / 'campaign.yaml').write_text(campaign)
    (tmp_path / 'study.yaml').write_text('name: s\ncampaign: {file: campaign.yaml}\n')
    with pytest.raises(
        StudyFileError, match=r"campaign.yaml:\d+: stop.max_cycle: unknown key \(did you mean 'max_cycles'"
    ):
        load_study(tmp_path / 'study.yaml')
