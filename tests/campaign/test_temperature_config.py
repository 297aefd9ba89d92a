"""``kind: temperature`` campaign files: the example validates; typos, bad values and a wrong kind name their line."""

from pathlib import Path

import pytest

from aiida_mofal.campaign.config import CampaignFileError, load_campaign, parse_campaign
from aiida_mofal.campaign.temperature import temperature_settings, temperatures

EXAMPLE = Path(__file__).resolve().parents[2] / 'examples' / 'campaign_temperature.yaml'
CLUSTER_EXAMPLE = EXAMPLE.with_name('campaign_znim2.yaml')


def line_of(text: str, needle: str) -> int:
    return next(i for i, row in enumerate(text.splitlines(), start=1) if needle in row)


def test_the_example_validates_as_a_temperature_campaign():
    campaign = load_campaign(EXAMPLE)
    assert campaign.kind == 'temperature' and campaign.protocol == 'demo'
    assert list(campaign.targets) == ['znim2'] and campaign.targets['znim2'].is_file()
    settings = campaign.settings.model_dump()
    assert settings['explore']['runs'] == 2 and settings['test']['frames'] == 2 and settings['final']['random'] == 2
    assert settings['explore']['overrides'] == {'barostat': 'anisotropic'}
    assert temperatures(settings) == [100.0, 200.0, 300.0]
    assert 'kind' not in campaign.overrides and 'kind' not in settings
    assert load_campaign(CLUSTER_EXAMPLE).kind == 'cluster'  # no kind: the cluster campaign, as before


def test_the_protocol_defaults_follow_the_paper():
    settings = temperature_settings().model_dump()
    assert temperatures(settings) == [100.0 * k for k in range(1, 11)]  # 100 K to 1000 K by 100 K
    assert settings['explore']['runs'] == 50 and settings['explore']['protocol'] == 'cbad_walk'
    assert settings['test']['temperature_range'] == (10.0, 1000.0)
    paper = temperature_settings('paper').model_dump()
    assert paper['initial']['candidates'] == 100 and paper['test']['frames'] == 200
    assert settings['final'] == {'random': 100, 'steps': None, 'temperature_range': None}  # the paper's ~100
    assert settings['resources']['evaluate'] is None  # evaluation in the campaign's process unless a code is named


def test_an_unknown_kind_is_refused_with_its_line_and_the_fix():
    text = EXAMPLE.read_text().replace('kind: temperature', 'kind: temprature')
    with pytest.raises(CampaignFileError) as error:
        parse_campaign(text, 't.yaml')
    line = line_of(text, 'kind:')
    assert f"t.yaml:{line}: kind: unknown campaign kind 'temprature' (did you mean 'temperature'?)" in str(error.value)


def test_a_typo_names_the_key_the_line_and_the_fix():
    text = EXAMPLE.read_text().replace('  runs: 2', '  run: 2')
    with pytest.raises(CampaignFileError) as error:
        parse_campaign(text, 't.yaml')
    assert f"t.yaml:{line_of(text, 'run: 2')}: explore.run: unknown key (did you mean 'runs'?)" in str(error.value)
    cluster_key = EXAMPLE.read_text().replace('test:\n', 'stop: {max_cycles: 2}\ntest:\n')
    with pytest.raises(CampaignFileError, match=r'stop: unknown key; valid: protocol, name, initial, selection'):
        parse_campaign(cluster_key, 't.yaml')  # the cluster campaign's sections are not a temperature's


def test_bad_values_are_all_reported_with_their_lines():
    text = (
        EXAMPLE.read_text()
        .replace('runs: 2', 'runs: 0')
        .replace('{start: 100.0, step: 100.0, stop: 300.0}', '{start: 400.0, step: 100.0, stop: 300.0}')
        .replace('resolutions: {}', 'resolutions: {bonds: 0.1}')
    )
    with pytest.raises(CampaignFileError) as error:
        parse_campaign(text, 't.yaml')
    message = str(error.value)
    assert f't.yaml:{line_of(text, "runs: 0")}: explore.runs: Input should be greater than or equal to 1' in message
    assert 'explore.temperatures: Value error, start (400.0 K) is above stop (300.0 K)' in message
    assert "selection.resolutions: Value error, unknown CBAD descriptor family 'bonds'" in message
    assert "Did you mean 'bond'?" in message


def test_one_framework_only():
    text = EXAMPLE.read_text().replace('targets:\n', 'targets:\n  - {name: other, structure: x.cif}\n')
    with pytest.raises(CampaignFileError, match=r'targets: List should have at most 1 item'):
        parse_campaign(text, 't.yaml')


def test_overrides_from_python_are_validated_the_same_way():
    settings = temperature_settings('demo', {'explore': {'temperatures': {'stop': 200.0}}}).model_dump()
    assert temperatures(settings) == [100.0, 200.0] and settings['explore']['temperatures']['step'] == 100.0
    with pytest.raises(CampaignFileError, match="temperature campaign settings: test.frame: unknown key .*'frames'"):
        temperature_settings(None, {'test': {'frame': 3}})
    with pytest.raises(CampaignFileError, match="unknown temperature protocol 'papr'. Did you mean 'paper'"):
        temperature_settings('papr')
