"""What a finished or running campaign holds, read from the provenance graph with the QueryBuilder.

Everything starts from the campaign's ``cycles`` outputs: each cycle record says which processes did the cycle's
work (by UUID), what they found and how long it took, so no query parses a link label and the answers are the
same on a live profile and on an archive imported into a fresh one.
"""

from __future__ import annotations

__all__ = ('campaign_rows', 'campaign_targets', 'last_evaluation_errors', 'load_campaign_node')

CAMPAIGN_PROCESS = 'ClusterCampaignWorkChain'


def load_campaign_node(identifier: str):
    """Load the campaign with PK, UUID or label ``identifier``; raise ``ValueError`` if it is no campaign."""
    from aiida import orm

    try:
        node = orm.load_node(identifier)
    except Exception as error:  # noqa: BLE001 -- not existing, ambiguous: the message says which
        raise ValueError(f'no node {identifier!r}: {error}') from None
    if getattr(node, 'process_label', None) != CAMPAIGN_PROCESS:
        kind = getattr(node, 'process_label', None) or type(node).__name__
        raise ValueError(f'node {node.pk} is a {kind}, not a campaign; `mofal status` needs a {CAMPAIGN_PROCESS}.')
    return node


def _records(campaign) -> list[dict]:
    from aiida import orm

    query = orm.QueryBuilder()
    query.append(orm.WorkflowNode, filters={'id': campaign.pk}, tag='campaign')
    query.append(
        orm.Dict, with_incoming='campaign', edge_filters={'label': {'like': 'cycles__%'}}, project='attributes'
    )
    return sorted(query.all(flat=True), key=lambda record: record['cycle'])


def campaign_rows(campaign) -> list[dict]:
    """Per-cycle rows of a campaign (its cycle records, plus meV/Å and meV/atom columns for the table)."""
    rows = []
    for record in _records(campaign):
        row = dict(record)
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
    """Return the campaign's target structures by name (its ``targets`` inputs)."""
    return dict(campaign.inputs.targets) if 'targets' in campaign.inputs else {}
