"""The campaign file: the shipped example validates; typos and bad values are refused with their line."""

from pathlib import Path

import numpy as np
import pytest

from aiida_mofal.campaign.config import CampaignFileError, campaign_settings, load_campaign, parse_campaign
from aiida_mofal.campaign.initial import initial_configurations
from tests.structure_files import read_structure

EXAMPLE = Path(__file__).resolve().parents[2] / 'examples' / 'campaign_znim2.yaml'


def test_the_example_campaign_validates_as_overrides_of_its_protocol():
    campaign = load_campaign(EXAMPLE)
    assert campaign.protocol == 'demo' and campaign.targets['znim2'].is_file()
    settings = campaign.settings
    assert settings.label.protocol == 'xtb' and settings.stop.max_cycles == 2  # from the file
    assert settings.explore.pressure_range == (-1.5, 1.5)
    assert 'density' not in campaign.overrides and settings.density.settings == {}  # from the protocol
    assert settings.resources.scan is None and settings.stop.mae_p95 is None
    assert campaign.overrides['extract']['max_clusters'] == 6 != campaign_settings().extract.max_clusters


def test_overrides_from_python_are_validated_the_same_way():
    settings = campaign_settings('demo', {'stop': {'max_cycles': 1}, 'resources': {'scan': {'code': 'gpu@hpc'}}})
    assert settings.stop.max_cycles == 1 and settings.stop.unknown_fraction is None
    assert settings.resources.scan.code == 'gpu@hpc' and settings.resources.scan.options == {}
    with pytest.raises(CampaignFileError, match="campaign settings: stop.max_cycle: unknown key .*'max_cycles'"):
        campaign_settings(None, {'stop': {'max_cycle': 1}})
    with pytest.raises(CampaignFileError, match='targets: unknown key'):
        campaign_settings(None, {'targets': []})  # targets are the builder's argument, not a setting
    with pytest.raises(CampaignFileError, match="protocol: unknown campaign protocol 'dmeo'. Did you mean 'demo'"):
        campaign_settings('dmeo')


def test_an_unknown_protocol_and_repeated_targets_are_refused_with_their_line():
    text = EXAMPLE.read_text().replace('protocol: demo ', 'protocol: dmeo ')
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if row.startswith('protocol:'))
    with pytest.raises(CampaignFileError, match=f"demo.yaml:{line}: protocol: unknown campaign protocol 'dmeo'"):
        parse_campaign(text, 'demo.yaml')
    twice = EXAMPLE.read_text().replace('targets:\n', 'targets:\n  - {name: znim2, structure: x.cif}\n')
    with pytest.raises(CampaignFileError, match='targets: .*unique; repeated: znim2'):
        parse_campaign(twice, 'demo.yaml')


def test_a_typo_names_the_key_the_line_and_the_fix():
    text = EXAMPLE.read_text().replace('  max_cycles: 2', '  max_cycle: 2')
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if 'max_cycle:' in row)
    with pytest.raises(CampaignFileError) as error:
        parse_campaign(text, 'demo.yaml')
    assert f"demo.yaml:{line}: stop.max_cycle: unknown key (did you mean 'max_cycles'?)" in str(error.value)


def test_bad_values_are_all_reported():
    text = EXAMPLE.read_text().replace('walks: 2', 'walks: 0').replace('[-1.5, 1.5]', '[1.5, -1.5]')
    with pytest.raises(CampaignFileError) as error:
        parse_campaign(text, 'demo.yaml')
    message = str(error.value)
    assert 'explore.walks: Input should be greater than or equal to 1' in message
    assert 'explore.pressure_range' in message and '[low, high]' in message
    with pytest.raises(CampaignFileError, match='targets'):
        parse_campaign('name: x\n', 'empty.yaml')
    with pytest.raises(CampaignFileError, match='not valid YAML'):
        parse_campaign('targets: [\n', 'broken.yaml')


def test_a_missing_target_file_is_refused(tmp_path):
    text = EXAMPLE.read_text().replace('ZnIm2-sod_Lewis2009.cif', 'nope.cif')
    (tmp_path / 'c.yaml').write_text(text)
    with pytest.raises(CampaignFileError, match='not found'):
        load_campaign(tmp_path / 'c.yaml')


def test_initial_configurations_are_perturbed_cells_and_charged_clusters():
    atoms = read_structure('ZnIm2-sod_Lewis2009.cif')
    training, test = initial_configurations(
        atoms, periodic_frames=2, clusters=3, test_frames=1, rattle=0.05, strain=0.02, seed=1
    )
    assert [a.info['config_type'] for a in training] == ['periodic'] * 2 + ['cluster'] * 3
    assert len(test) == 1 and test[0].pbc.all()
    for frame in training[:2] + test:
        assert len(frame) == len(atoms) and not np.allclose(frame.cell, atoms.cell)
        assert 0.01 < np.abs(frame.get_scaled_positions() - atoms.get_scaled_positions()).max()
    for cluster in training[2:]:
        assert cluster.info['charge'] > 0 and not cluster.pbc.any()  # Zn2+ centres: cations
    again, _ = initial_configurations(
        atoms, periodic_frames=2, clusters=3, test_frames=1, rattle=0.05, strain=0.02, seed=1
    )
    assert all(np.allclose(a.positions, b.positions) for a, b in zip(training, again))


def test_test_frames_come_from_the_second_half_of_a_walk_never_its_start():
    from aiida_mofal.campaign.initial import pick_test_frames

    assert pick_test_frames(21, 5) == [10, 12, 15, 18, 20]  # 20 frames after the start: the second half
    assert pick_test_frames(5, 3) == [2, 3, 4]
    assert pick_test_frames(5, 4) == [1, 2, 3, 4]  # too few in the second half: the whole walk after frame 0
    assert pick_test_frames(3, 5) == [1, 2] and pick_test_frames(1, 5) == [] and pick_test_frames(10, 0) == []
