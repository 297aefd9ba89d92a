"""What a finished or running campaign holds, read from the provenance graph with the QueryBuilder.

Everything starts from the campaign's ``cycles`` outputs (``steps`` for a temperature campaign): each record says
which processes did the cycle's work (by UUID), what they found and how long it took, so no query parses a link
label and the answers are the same on a live profile and on an archive imported into a fresh one.
"""

from __future__ import annotations

__all__ = ('campaign_kind', 'campaign_rows', 'campaign_targets', 'last_evaluation_errors', 'load_campaign_node')

CAMPAIGN_PROCESS = 'ClusterCampaignWorkChain'
TEMPERATURE_PROCESS = 'TemperatureCampaignWorkChain'
#: process label -> (campaign kind, output namespace of its records, the record's ordering key)
CAMPAIGN_PROCESSES = {
    CAMPAIGN_PROCESS: ('cluster', 'cycles', 'cycle'),
    TEMPERATURE_PROCESS: ('temperature', 'steps', 'step'),
}


def load_campaign_node(identifier: str):
    """Load the campaign with PK, UUID or label ``identifier``; raise ``ValueError`` if it is no campaign."""
    from aiida import orm

    try:
        node = orm.load_node(identifier)
    except Exception as error:  # noqa: BLE001 -- not existing, ambiguous: the message says which
        raise ValueError(f'no node {identifier!r}: {error}') from None
    if getattr(node, 'process_label', None) not in CAMPAIGN_PROCESSES:
        kind = getattr(node, 'process_label', None) or type(node).__name__
        known = ' or '.join(CAMPAIGN_PROCESSES)
        raise ValueError(f'node {node.pk} is a {kind}, not a campaign; `mofal status` needs a {known}.')
    return node


def campaign_kind(campaign) -> str:
    """``cluster`` or ``temperature``: which campaign ``campaign`` is."""
    return CAMPAIGN_PROCESSES[campaign.process_label][0]


def _records(campaign) -> list[dict]:
    from aiida import orm

    _, namespace, order = CAMPAIGN_PROCESSES[campaign.process_label]
    query = orm.QueryBuilder()
    query.append(orm.WorkflowNode, filters={'id': campaign.pk}, tag='campaign')
    query.append(
        orm.Dict, with_incoming='campaign', edge_filters={'label': {'like': f'{namespace}__%'}}, project='attributes'
    )
    return sorted(query.all(flat=True), key=lambda record: record[order])


def campaign_rows(campaign) -> list[dict]:
    """Per-cycle (per-step) rows of a campaign: its records, plus meV/Å, meV/atom and MPa columns for the table."""
    rows = []
    for record in _records(campaign):
        row = dict(record)
        if 'energy_rmse_ev_per_atom' in row:  # a temperature step: the paper's metrics
            value = row['energy_rmse_ev_per_atom']
            row['energy_rmse_mev_per_atom'] = None if value is None else 1000 * value
        for key in ('force_mae_pk', 'force_rmse'):
            value = row.get(f'{key}_ev_per_a')
            row[f'{key}_mev_per_a'] = None if value is None else 1000 * value
        value = row.get('delta_e_std_ev_per_atom')
        row['delta_e_std_mev_per_atom'] = None if value is None else 1000 * value
        rows.append(row)
    return rows


def last_evaluation_errors(rows: list[dict]) -> dict | None:
    """Return the per-structure and per-atom errors of the last recorded evaluation (calcfunction or job)."""
    from aiida import orm

    uuid = next((row['evaluation'] for row in reversed(rows) if row.get('evaluation')), None)
    if uuid is None:
        return None
    node = orm.load_node(uuid)
    if 'errors' not in node.outputs:
        return None
    errors = node.outputs.errors
    return {name: errors.get_array(name) for name in errors.get_arraynames()}


def campaign_targets(campaign) -> dict:
    """Return the campaign's target structures by name (its ``targets`` inputs; a temperature campaign's one)."""
    if 'structure' in campaign.inputs:
        return {campaign.label or 'framework': campaign.inputs.structure}
    return dict(campaign.inputs.targets) if 'targets' in campaign.inputs else {}
