"""``extract.mantle_depth: auto`` and its settings: validated before anything runs; an integer stays as it was."""

import pytest

from aiida_mofal.calculations.mantle import initial_mantle_depth, mantle_depth_of
from aiida_mofal.campaign.config import CampaignFileError, campaign_settings, parse_campaign


def test_integer_depth_is_the_default_and_auto_takes_the_documented_defaults():
    default = campaign_settings().extract
    assert default.mantle_depth == 1 and initial_mantle_depth(default.model_dump()) == 1
    auto = campaign_settings(overrides={'extract': {'mantle_depth': 'auto'}}).extract
    assert (auto.mantle_depth, auto.mantle_force_threshold, auto.mantle_depths) == ('auto', 0.05, [0, 1, 2])
    assert initial_mantle_depth(auto.model_dump()) == 2  # no model yet: the widest candidate
    given = campaign_settings(overrides={'extract': {'mantle_depth': 'auto', 'mantle_depths': [2, 0]}}).extract
    assert given.mantle_depths == [0, 2]


@pytest.mark.parametrize(
    ('extract', 'message'),
    [
        ({'mantle_depth': 'deep'}, "give a block count >= 0 or 'auto'"),
        ({'mantle_depth': -1}, "give a block count >= 0 or 'auto'"),
        ({'mantle_depth': 'auto', 'mantle_force_threshold': -0.01}, 'extract.mantle_force_threshold'),
        ({'mantle_depth': 'auto', 'mantle_force_threshold': 0}, 'greater than 0'),
        ({'mantle_depth': 'auto', 'mantle_depths': [0, 0, 1]}, 'distinct block counts in 0..4'),
        ({'mantle_depth': 'auto', 'mantle_depths': [7]}, 'distinct block counts in 0..4'),
        ({'mantle_depth': 'auto', 'mantle_depths': []}, 'extract.mantle_depths'),
        ({'mantle_treshold': 0.1}, "did you mean 'mantle_force_threshold'"),
    ],
)
def test_bad_mantle_settings_are_refused_with_their_key(extract, message):
    with pytest.raises(CampaignFileError, match='extract') as error:
        campaign_settings(overrides={'extract': extract})
    assert message in str(error.value)


def test_a_campaign_file_line_points_at_a_bad_mantle_depth():
    text = 'targets:\n  - {name: a, structure: a.cif}\nextract:\n  mantle_depth: automatic\n'
    with pytest.raises(CampaignFileError) as error:
        parse_campaign(text, 'c.yaml')
    assert 'c.yaml:4: extract.mantle_depth' in str(error.value)


def test_the_scan_cuts_with_the_chosen_depth_only_when_auto():
    assert mantle_depth_of({'mantle_depth': 2}, None) == 2
    assert mantle_depth_of({'mantle_depth': 'auto'}, {'chosen_depth': 0}) == 0
    with pytest.raises(ValueError, match='no mantle choice'):
        mantle_depth_of({'mantle_depth': 'auto'}, None)
