"""What a finished or running campaign holds, read from the provenance graph with the QueryBuilder.

Everything starts from the campaign's ``cycles`` outputs (``steps`` for a temperature campaign): each record says
which processes did the cycle's work (by UUID), what they found and how long it took, so no query parses a link
label and the answers are the same on a live profile and on an archive imported into a fresh one.
"""

from __future__ import annotations

__all__ = (
    'campaign_kind',
    'campaign_rows',
    'campaign_targets',
    'end_message',
    'last_evaluation_errors',
    'load_campaign_node',
    'test_set_summary',
)

CAMPAIGN_PROCESS = 'ClusterCampaignWorkChain'
TEMPERATURE_PROCESS = 'TemperatureCampaignWorkChain'
#: process label -> (campaign kind, output namespace of its records, the record's ordering key)
CAMPAIGN_PROCESSES = {
    CAMPAIGN_PROCESS: ('cluster', 'cycles', 'cycle'),
    TEMPERATURE_PROCESS: ('temperature', 'steps', 'step'),
}


def end_message(campaign) -> str | None:
    """Why ``campaign`` ended: its exit message, or (exit status 0 keeps none) its ``stop_reason`` extra."""
    return campaign.exit_message or campaign.base.extras.get('stop_reason', None)


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


def test_set_summary(campaign) -> str | None:
    """One line on what the cluster campaign's errors are measured on: MD-sampled frames, rattled cells, or none.

    Read from the campaign's settings and its ``test_set`` output (or, while it runs, its test-set work chain), so
    a reader of ``mofal status`` knows whether a ΔE_std of 0 can be by construction.
    """
    from aiida import orm

    if campaign_kind(campaign) != 'cluster' or 'settings' not in campaign.inputs:
        return None
    initial = campaign.inputs.settings.get_dict().get('initial', {})
    query = orm.QueryBuilder()
    query.append(orm.WorkflowNode, filters={'id': campaign.pk}, tag='campaign')
    query.append(
        orm.WorkflowNode, with_incoming='campaign', filters={'attributes.process_label': 'CampaignTestSetWorkChain'}
    )
    sampler = query.first(flat=True)
    dataset = campaign.outputs.test_set if 'test_set' in campaign.outputs else None
    if dataset is None and sampler is not None and 'dataset' in sampler.outputs:
        dataset = sampler.outputs.dataset
    count = f'{dataset.count} labelled frames' if dataset is not None else 'not labelled yet'
    if initial.get('test_source') == 'md' and initial.get('test_frames', 0) > 0:
        where = f', {sampler.process_label}<{sampler.pk}>' if sampler is not None else ''
        return (
            f'test set: {initial["test_frames"]} frames per target from MD at {initial.get("test_temperature")} K '
            f'({count}{where})'
        )
    if initial.get('test_frames', 0) > 0:
        return f'test set: {initial["test_frames"]} rattled, strained frame(s) per target ({count})'
    return 'test set: none; the errors are on the training set'
