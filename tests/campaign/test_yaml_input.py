"""Issue 18, class 6 (validate everything before anything runs): campaign YAML and absurd settings are refused.

Repeated keys and alias bombs are refused with their line, before any validation walks the document; physically
absurd values name the value and the unit expected. Nothing here submits or stores anything.
"""

import time
from pathlib import Path

import click
import pytest

from aiida_mofal.campaign.config import CampaignFileError, parse_campaign
from aiida_mofal.cli.utils import parse_overrides
from aiida_mofal.md.protocol import load_md_settings
from aiida_mofal.protocols import ProtocolError
from aiida_mofal.safe_yaml import YamlInputError, load_yaml

EXAMPLE = Path(__file__).resolve().parents[2] / 'examples' / 'campaign_znim2.yaml'


def test_a_key_written_twice_is_refused_with_both_lines():
    text = EXAMPLE.read_text().replace('  walks: 2\n', '  walks: 2\n  temperature: 450.0\n')
    first = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith('  temperature:'))
    expected = rf"campaign.yaml:{first + 2}:.*'temperature' appears twice .*line {first}"
    with pytest.raises(CampaignFileError, match=expected):
        parse_campaign(text, 'campaign.yaml')
    with pytest.raises(YamlInputError, match="key 'a' appears twice"):
        load_yaml('{a: 1, b: 2, a: 3}')


def test_an_alias_bomb_is_refused_quickly():
    bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n' + '\n'.join(
        f'a{i}: &a{i} [' + ', '.join([f'*a{i - 1}'] * 10) + ']' for i in range(1, 10)
    )
    start = time.perf_counter()
    with pytest.raises(CampaignFileError, match='expands to more than 100,000 values'):
        parse_campaign(bomb, 'laughs.yaml')
    assert time.perf_counter() - start < 30  # a guard against the old behaviour (memory exhausted), not a benchmark
    assert load_yaml('base: &b {x: 1}\nother: *b') == {'base': {'x': 1}, 'other': {'x': 1}}  # modest aliases are fine


def test_override_values_with_yaml_tags_are_a_clear_error():
    with pytest.raises(click.BadParameter, match='--override x'):
        parse_overrides(('x=!!python/object/apply:os.system ["true"]',))
    with pytest.raises(click.BadParameter, match='appears twice'):
        parse_overrides(('x={a: 1, a: 2}',))
    assert parse_overrides(('train.lr=0.01',)) == {'train': {'lr': 0.01}}


@pytest.mark.parametrize(
    ('old', 'new', 'message'),
    [
        ('  walks: 2\n', '  walks: 20000\n', 'explore.walks: Input should be less than or equal to 1000'),
        ('[-1.5, 1.5]', '[0, 2500]', 'in GPa'),
        ('  temperature: 300.0\n', '  temperature: 250000\n', 'explore.temperature: Input should be less than or'),
        ('  periodic_frames: 1 ', '  periodic_frames: 0 ', 'MACE needs at least 2 configurations'),
    ],
)
def test_absurd_campaign_settings_are_refused(old, new, message):
    text = EXAMPLE.read_text()
    assert old in text
    text = text.replace(old, new)
    if 'periodic_frames' in old:
        text = text.replace('  clusters: 8 ', '  clusters: 1 ')
    with pytest.raises(CampaignFileError, match=message):
        parse_campaign(text, 'campaign.yaml')


def test_absurd_md_settings_name_the_value_and_unit():
    with pytest.raises(ProtocolError, match='timestep 500 fs is beyond 100 fs'):
        load_md_settings('explore', {'timestep': 500.0})
    with pytest.warns(UserWarning, match='timestep 20 fs: MD of atoms needs 0.5-2 fs'):
        load_md_settings('explore', {'timestep': 20.0})
    with pytest.raises(ProtocolError, match='temperature 300000 K is beyond 10000 K'):
        load_md_settings('explore', {'schedule': [{'steps': 10, 'temperature': 300000.0, 'pressure': 0.0}]})
    with pytest.raises(ProtocolError, match='pressure 2000 GPa is beyond'):
        load_md_settings('explore', {'schedule': [{'steps': 10, 'temperature': 300.0, 'pressure': 2000.0}]})


def test_a_code_of_the_wrong_kind_is_refused_before_anything(mofal_codes):
    from aiida_mofal.workchains.campaign_inputs import campaign_inputs

    codes = {'cp2k': mofal_codes['cp2k'], 'train': mofal_codes['python-mace'], 'md': mofal_codes['cp2k']}
    with pytest.raises(ValueError, match='resources.md.code: cp2k@localhost is a cp2k code'):
        campaign_inputs(codes, {'x': 'missing.cif'}, 'demo')
