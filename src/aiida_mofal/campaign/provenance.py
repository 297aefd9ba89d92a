"""Where a training configuration and a model came from, read back from the provenance graph.

A campaign's data sets are a few repository-backed nodes, so "this configuration" is (data set, index). The
trace follows the calcfunctions that made each set (``merge_datasets``, ``split_by_set``, ``collect_labels``,
``clusters_from_scan`` / ``scan_and_extract``, ``initial_dataset``) through their input links, mapping the index
at every step, and checks at every step that the frame it lands on is the same configuration (atomic numbers and
positions), so a trace never silently points at a neighbour. Nothing here parses a call-link label to find a
node; labels are only printed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiida import orm
from aiida.common.links import LinkType

from aiida_mofal.cp2k.labels import label_rows

__all__ = ('model_lineage', 'trace_configuration')


class ProvenanceError(ValueError):
    """The graph does not hold the link or node a trace needs (the message says which)."""


def _same(a, b) -> bool:
    return len(a) == len(b) and np.array_equal(a.numbers, b.numbers) and np.allclose(a.positions, b.positions)


def _inputs(node: orm.ProcessNode) -> dict[str, orm.Node]:
    return {link.link_label: link.node for link in node.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()}


def _process(node: orm.ProcessNode | None) -> dict | None:
    if node is None:
        return None
    record = {'pk': node.pk, 'uuid': node.uuid, 'process': node.process_label, 'exit_status': node.exit_status}
    call = node.base.links.get_incoming(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all()
    if call and call[0].link_label != 'CALL':  # 'CALL' is the default label of a calcfunction called by a process
        record['called_as'] = call[0].link_label
    return record


def _campaign_of(node: orm.ProcessNode | None) -> orm.ProcessNode | None:
    while node is not None and node.process_label != 'ClusterCampaignWorkChain':
        node = node.caller
    return node


def _merge_order(labels: list[str]) -> list[str]:
    """Return the keyword order of ``merge_datasets`` calls in this package: ``previous, new``, else sorted names."""
    if set(labels) == {'previous', 'new'}:
        return ['previous', 'new']
    return sorted(labels)


def _step_back(node, index: int, atoms) -> tuple[dict, Any, int] | None:
    """One step back from frame ``index`` of data set ``node``: (what the step says, parent set, parent index)."""
    creator = node.creator
    if creator is None:
        return None
    name = creator.process_label
    inputs = _inputs(creator)
    step: dict = {'step': name, 'calculation': _process(creator), 'dataset': node.pk, 'index': index}
    if name == 'merge_datasets':
        offset = 0
        for label in _merge_order(list(inputs)):
            count = inputs[label].count
            if offset <= index < offset + count:
                step['from_input'] = label
                return step, inputs[label], index - offset
            offset += count
        raise ProvenanceError(f'merge_datasets<{creator.pk}> has fewer frames than index {index} of {node.pk}.')
    if name in ('split_by_set', 'split_dataset'):
        parent = inputs['dataset']
        label = node.base.links.get_incoming(link_type=LinkType.CREATE).one().link_label
        frames = parent.get_atoms()
        if name == 'split_by_set':
            chosen = [i for i, frame in enumerate(frames) if frame.info.get('campaign_set', 'train') == label]
            return {**step, 'set': label}, parent, chosen[index]
        matches = [i for i, frame in enumerate(frames) if _same(frame, atoms)]
        if not matches:
            raise ProvenanceError(f'frame {index} of {node.pk} is not in the data set {parent.pk} it was split from.')
        return {**step, 'set': label}, parent, matches[0]
    if name == 'collect_labels':
        source_index = int(atoms.info['source_index'])
        frames = inputs['frames'].get_dict()
        key, position = next(
            (key, position)
            for key, value in frames.items()
            for position, index in enumerate(value if isinstance(value, list) else [value])
            if index is not None and int(index) == source_index
        )  # a packed job's one label node holds many frames: the position in that job is the row
        labels = inputs[f'labels__{key}'] if f'labels__{key}' in inputs else inputs[key]
        job = labels.creator
        packed = job is not None and job.process_label == 'Cp2kPackedCalculation'  # K structures, one job
        base = None if packed or job is None else job.caller
        step['label'] = {
            'cp2k_job': _process(job),
            'computer': job.computer.label if job is not None and job.computer else None,
            'restart_chain': _process(base),
            'attempts': len(base.called) if base is not None else (1 if packed else None),
            'labelling': _process(job.caller if packed else base.caller if base is not None else None),
            'structures_in_job': job.inputs.structures.count if packed else 1,
            'scheduler_job_id': job.get_job_id() if job is not None else None,
            'energy_ev': label_rows(labels)[position]['energy'],
            'position_in_job': position,
            'level_of_theory': node.level_of_theory,
        }
        return step, inputs['source'], source_index
    return {**step, 'origin': True}, None, index


def _flagged(creator, atoms) -> dict:
    """Which walk, MD frame, model and density model flagged a cluster, and how uncertain its seed atom was."""
    inputs = _inputs(creator)
    if creator.process_label == 'clusters_from_scan':
        scan_job = inputs['scan'].creator
        job_inputs = _inputs(scan_job)
        model, density = job_inputs['model'], job_inputs.get('density_model')
        frames_function = inputs['frames'].creator
        walk_inputs = _inputs(frames_function)
        scorer = _process(scan_job)
    else:  # scan_and_extract: scored in the calcfunction itself
        model, density, walk_inputs, scorer = inputs['model'], inputs['density'], inputs, _process(creator)
    walks = walk_inputs['walks'].get_dict()
    target, walk = atoms.info.get('target'), int(atoms.info.get('walk', -1))
    key = next((k for k, record in walks.items() if record['target'] == target and int(record['walk']) == walk), None)
    trajectory = walk_inputs.get(key) or walk_inputs.get(f'trajectories__{key}')
    md_job = trajectory.creator if trajectory is not None else None
    seed = int(atoms.info['seed_atom'])
    parents = atoms.arrays.get('parent_index')
    element = None
    if parents is not None and seed in parents:
        element = atoms.get_chemical_symbols()[int(np.flatnonzero(parents == seed)[0])]
    threshold = density.thresholds.get(element) if density is not None and element else None
    return {
        'cycle': None if atoms.info.get('cycle') is None else int(atoms.info['cycle']),  # extxyz may give text
        'target': target,
        'walk': walk,
        'walk_record': walks.get(key),
        'md_frame': int(atoms.info['frame']),
        'trajectory': trajectory.pk if trajectory is not None else None,
        'md_job': _process(md_job),
        'md_workchain': _process(md_job.caller) if md_job is not None else None,
        'seed_atom': seed,
        'seed_element': element,
        'uncertainty': float(atoms.info['uncertainty']),
        'threshold_uncertainty': None if threshold is None else -float(threshold),
        'model': model.pk,
        'density_model': density.pk if density is not None else None,
        'scored_by': scorer,
        'extracted_by': _process(creator),
    }


def trace_configuration(dataset, index: int) -> dict:
    """Trace frame ``index`` of data set ``dataset`` back to where it was made and labelled.

    :returns: ``steps`` (each data-set step back, newest first), ``label`` (the CP2K job that labelled it, its
        computer, restart chain and energy), ``flagged`` for a cluster the campaign learned (cycle, walk, MD
        trajectory and frame, the model and density model that flagged it, seed-atom uncertainty and the
        threshold it exceeded), ``initial`` for a configuration of the initial set (target structure and set),
        and ``campaign`` (the campaign process, when there is one).
    :raises ProvenanceError: when the index is out of range or a link the trace needs is missing.
    """
    if not 0 <= index < dataset.count:
        raise ProvenanceError(f'data set {dataset.pk} has {dataset.count} configurations; there is no index {index}.')
    atoms = dataset.get_atoms()[index]
    result: dict = {'dataset': dataset.pk, 'index': index, 'formula': atoms.get_chemical_formula(), 'steps': []}
    result['config_type'] = atoms.info.get('config_type')
    node, position = dataset, index
    while node is not None:
        here = node.get_atoms()[position]
        if not _same(here, atoms):
            raise ProvenanceError(f'the trace reached frame {position} of {node.pk}, which is another configuration.')
        back = _step_back(node, position, here)
        if back is None:
            result['steps'].append({'step': 'stored', 'dataset': node.pk, 'index': position, 'origin': True})
            break
        step, parent, parent_index = back
        result['steps'].append(step)
        if 'label' in step:
            result['label'] = step['label']
        creator = node.creator
        if creator.process_label in ('clusters_from_scan', 'scan_and_extract'):
            result['flagged'] = _flagged(creator, here)
        if creator.process_label == 'initial_dataset':
            structure = _inputs(creator)['structure']
            result['initial'] = {
                'target': here.info.get('target'),
                'set': here.info.get('campaign_set'),
                'structure': structure.pk,
                'formula': structure.get_formula(),
            }
        node, position = parent, parent_index
    campaign = _campaign_of(dataset.creator)
    if campaign is None and 'label' in result:
        campaign = _campaign_of(orm.load_node(result['label']['labelling']['uuid']))
    result['campaign'] = _process(campaign)
    return result


def _dataset_history(dataset) -> list[dict]:
    """Return the merges that built ``dataset``, oldest first, down to its initial set(s)."""
    history = []
    node = dataset
    while node is not None and node.creator is not None:
        creator = node.creator
        inputs = _inputs(creator)
        if creator.process_label == 'merge_datasets' and set(inputs) == {'previous', 'new'}:
            new = inputs['new']
            labelling = _campaign_child(new)
            history.append({'added': new.count, 'dataset': node.pk, 'count': node.count, 'labelling': labelling})
            node = inputs['previous']
            continue
        if creator.process_label in ('split_by_set', 'split_dataset'):
            label = node.base.links.get_incoming(link_type=LinkType.CREATE).one().link_label
            history.append({'initial': node.pk, 'count': node.count, 'set': label, 'split_from': inputs['dataset'].pk})
            node = inputs['dataset']
            continue
        history.append({'dataset': node.pk, 'count': node.count, 'made_by': _process(creator)})
        if creator.process_label == 'collect_labels':
            node = inputs['source']
            continue
        if creator.process_label == 'initial_dataset':
            history[-1]['target_structure'] = inputs['structure'].pk
        node = None
    return list(reversed(history))


def _campaign_child(dataset) -> dict | None:
    """Return the labelling work chain that returned ``dataset`` (after its ``collect_labels``)."""
    returns = dataset.base.links.get_incoming(link_type=LinkType.RETURN).all()
    for link in returns:
        if link.node.process_label == 'LabelWorkChain':
            return _process(link.node)
    return None


def _cycle_records(campaign) -> dict[str, dict]:
    """Map the UUID of each cycle's training work chain to the cycle's record (its errors on the evaluation set)."""
    query = orm.QueryBuilder()
    query.append(orm.WorkflowNode, filters={'id': campaign.pk}, tag='campaign')
    query.append(
        orm.Dict, with_incoming='campaign', edge_filters={'label': {'like': 'cycles__%'}}, project='attributes'
    )
    records = {}
    for (record,) in query.all():
        train = (record.get('processes') or {}).get('train')
        if train:
            records[train] = record
    return records


def model_lineage(model) -> dict:
    """Every model ``model`` was fine-tuned from, newest first, each with its training set and errors.

    :returns: ``models`` (pk, the training work chain and job, the training set's pk and size, the parent model,
        the metrics the training job reported and, in a campaign, the cycle and its ``force_mae_p95_ev_per_a`` on
        the evaluation set from the cycle record) and ``dataset_history`` of the oldest model's set and of the
        newest one (how the set grew, cycle by cycle, from the initial data set).
    """
    models = []
    node = model
    while node is not None:
        job = node.creator
        if job is None:
            models.append({'model': node.pk, 'made_by': None})
            break
        workchain = job.caller
        inputs = _inputs(job)
        has_mace = workchain is not None and 'mace' in workchain.inputs
        train_set = workchain.inputs.mace.train if has_mace else inputs['train']
        metrics = job.outputs.metrics.get_dict() if 'metrics' in job.outputs else {}
        parent = inputs.get('parent_model')
        models.append(
            {
                'model': node.pk,
                'training_job': _process(job),
                'training_workchain': _process(workchain),
                'training_set': train_set.pk,
                'training_configurations': train_set.count,
                'parent_model': parent.pk if parent is not None else None,
                'metrics': metrics,
            }
        )
        node = parent
    newest_set = orm.load_node(models[0]['training_set']) if models[0].get('training_set') else None
    campaign = _campaign_of(model.creator)
    if campaign is not None:
        records = _cycle_records(campaign)
        for entry in models:
            record = records.get((entry.get('training_workchain') or {}).get('uuid'))
            if record is not None:
                k = record.get('percentile_k', 95)
                entry.update(cycle=record['cycle'], evaluated_on=record.get('evaluated_on'))
                entry[f'force_mae_p{k}_ev_per_a'] = record.get('force_mae_pk_ev_per_a')
    return {
        'model': model.pk,
        'models': models,
        'dataset_history': _dataset_history(newest_set) if newest_set is not None else [],
        'campaign': _process(campaign),
    }
