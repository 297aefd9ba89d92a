"""Campaign queries read the cycle records (the `cycles` outputs) of a stored graph, never a link label."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from aiida_mofal.campaign.queries import campaign_rows, campaign_targets, last_evaluation_errors, load_campaign_node


@pytest.fixture
def stored_campaign(aiida_profile):
    """A campaign node with two cycle records and the evaluation the last one points to."""
    target = orm.StructureData(cell=[[5, 0, 0], [0, 5, 0], [0, 0, 5]])
    target.append_atom(position=(0, 0, 0), symbols='Zn')
    target.store()
    campaign = orm.WorkflowNode()
    campaign.set_process_label('ClusterCampaignWorkChain')
    campaign.base.links.add_incoming(target, LinkType.INPUT_WORK, 'targets__znim2')
    campaign.store()
    evaluation = orm.WorkflowNode().store()
    errors = orm.ArrayData()
    errors.set_array('structure_index', np.array([0, 0]))
    errors.store().base.links.add_incoming(evaluation, LinkType.RETURN, 'errors')
    records = [
        {'cycle': 1, 'force_mae_pk_ev_per_a': 0.5, 'force_rmse_ev_per_a': 0.2, 'delta_e_std_ev_per_atom': None,
         'evaluation': evaluation.uuid, 'failures': 1, 'wall_seconds': 12.0},
        {'cycle': 0, 'force_mae_pk_ev_per_a': 1.0, 'force_rmse_ev_per_a': 0.4, 'delta_e_std_ev_per_atom': 0.002,
         'evaluation': None, 'failures': 0, 'wall_seconds': 30.0},
    ]  # fmt: skip
    for record in records:  # stored out of order: the rows follow the cycle index inside the records
        orm.Dict(record).store().base.links.add_incoming(campaign, LinkType.RETURN, f'cycles__cycle_{record["cycle"]}')
    unrelated = orm.Dict({'cycle': 7}).store()
    unrelated.base.links.add_incoming(campaign, LinkType.RETURN, 'dataset_summary')
    return campaign


def test_rows_come_from_the_records_in_cycle_order_with_mev_columns(stored_campaign):
    rows = campaign_rows(stored_campaign)
    assert [row['cycle'] for row in rows] == [0, 1]
    assert rows[0]['force_mae_pk_mev_per_a'] == 1000.0 and rows[1]['force_rmse_mev_per_a'] == 200.0
    assert rows[0]['delta_e_std_mev_per_atom'] == 2.0 and rows[1]['delta_e_std_mev_per_atom'] is None
    assert rows[1]['failures'] == 1 and rows[1]['wall_seconds'] == 12.0


def test_the_last_evaluation_and_the_targets_are_found_through_the_records(stored_campaign):
    errors = last_evaluation_errors(campaign_rows(stored_campaign))
    assert errors['structure_index'].tolist() == [0, 0]
    assert last_evaluation_errors([{'cycle': 0, 'evaluation': None}]) is None
    assert list(campaign_targets(stored_campaign)) == ['znim2']


def test_only_campaigns_are_loaded(stored_campaign):
    assert load_campaign_node(str(stored_campaign.pk)).uuid == stored_campaign.uuid
    other = orm.Dict().store()
    with pytest.raises(ValueError, match=f'node {other.pk} is a Dict, not a campaign'):
        load_campaign_node(str(other.pk))
    with pytest.raises(ValueError, match="no node '999999'"):
        load_campaign_node('999999')
