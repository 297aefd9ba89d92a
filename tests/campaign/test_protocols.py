"""Campaign protocols (protocols/campaign.yaml): each one resolves, and so do the protocols it names."""

import pytest

from aiida_mofal import protocols
from aiida_mofal.campaign.config import campaign_settings
from aiida_mofal.md.protocol import load_md_settings
from aiida_mofal.protocols import available_protocols, load_protocol, read_protocol_file
from aiida_mofal.uncertainty.gmm import DensityModel
from aiida_mofal.workchains.label import label_settings


@pytest.mark.parametrize('name', sorted(available_protocols('campaign')))
def test_every_campaign_protocol_is_complete_and_names_existing_protocols(name):
    settings = campaign_settings(name)
    assert settings.protocol == name
    assert label_settings(settings.label.protocol, settings.label.overrides)['protocol'] == settings.label.protocol
    assert (
        load_protocol('mace', settings.train.protocol, settings.train.overrides)['protocol'] == settings.train.protocol
    )
    assert load_md_settings(settings.explore.protocol, settings.explore.overrides)['schedule']
    DensityModel.validate_settings(settings.density.settings)


def test_the_default_protocol_is_the_demo():
    assert read_protocol_file('campaign')['default_protocol'] == 'demo' == campaign_settings().protocol


def test_a_new_protocol_is_a_yaml_entry_of_what_differs(monkeypatch):
    content = read_protocol_file('campaign')
    content['protocols']['paper'] = {
        'description': 'as issue 16 will add it: only the keys that differ',
        'label': {'protocol': 'precise'},
        'explore': {'steps': 1000},
    }
    monkeypatch.setattr(protocols, 'read_protocol_file', lambda name: content)
    paper = campaign_settings('paper')
    assert paper.label.protocol == 'precise' and paper.explore.steps == 1000
    assert paper.extract == campaign_settings('demo').extract  # the rest from default_inputs


def test_defaults_hold_out_several_test_frames_and_the_paper_protocol_has_its_settings():
    demo = campaign_settings('demo')
    assert demo.initial.test_frames >= 5  # one frame makes ΔE_std (a spread over structures) 0 by construction
    assert (demo.initial.test_source, demo.initial.test_temperature) == ('md', 600.0)  # the paper: MD at 600 K
    assert demo.extract.reference_topology is True
    paper = campaign_settings('paper')
    assert (paper.label.protocol, paper.train.protocol, paper.explore.steps) == ('moderate', 'medium', 1000)
    assert paper.extract.max_clusters == 150 and paper.explore.walks == 25 and paper.extract.merge_depth == 1
