"""Calcfunctions of the active-learning campaign: initial data, scanning and extraction, splitting, records.

Each is a pure transformation of stored nodes, so that every cluster that enters the training set can be traced
to the MD frame, the model and the density model that flagged it.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data import DatasetData

__all__ = ('initial_dataset', 'record_cycle', 'scan_and_extract', 'split_by_set')


@calcfunction
def initial_dataset(structure: orm.StructureData, settings: orm.Dict) -> DatasetData:
    """Perturbed cells and clusters of one target, unlabelled; ``info['campaign_set']`` is ``train`` or ``test``.

    ``settings``: the campaign file's ``initial`` section plus ``target``, ``mantle_depth`` and ``vacuum``.
    """
    from aiida_mofal.campaign.initial import initial_configurations

    options = settings.get_dict()
    target = options.pop('target')
    training, test = initial_configurations(structure.get_ase(), **options)
    for frame in training:
        frame.info.update(campaign_set='train', target=target)
    for frame in test:
        frame.info.update(campaign_set='test', target=target)
    return DatasetData(training + test)


@calcfunction
def split_by_set(dataset: DatasetData) -> dict[str, DatasetData]:
    """Split a labelled data set by ``info['campaign_set']`` into ``train`` and (when present) ``test``."""
    frames = dataset.get_atoms()
    attributes = {'level_of_theory': dataset.level_of_theory, 'isolated_atom_energies': dataset.isolated_atom_energies}
    outputs = {}
    for name in ('train', 'test'):
        chosen = [atoms for atoms in frames if atoms.info.get('campaign_set', 'train') == name]
        if chosen:
            outputs[name] = DatasetData(chosen, **attributes)
    return outputs


@calcfunction
def scan_and_extract(
    model: orm.Data, density: orm.Data, settings: orm.Dict, **trajectories: orm.Data
) -> dict[str, orm.Data]:
    """Score every atom of every frame of the ``trajectories``; cut clusters around the unknown ones.

    ``settings``: ``max_clusters``, ``mantle_depth``, ``merge_depth``, ``vacuum``, ``cycle``. Clusters from all
    frames are ranked by the uncertainty of their seed atom, most uncertain first, and capped at
    ``max_clusters``. Outputs ``scan`` (Dict: frames, atoms, unknown atoms and fraction, per target) and, when any
    atom is unknown, ``clusters`` (an unlabelled ``mofal.dataset``).
    """
    from aiida_mofal.clusters.extract import extract_clusters

    options = settings.get_dict()
    candidates = []
    per_walk = {}
    total_atoms = total_unknown = frames_scanned = 0
    for key in sorted(trajectories):
        trajectory = trajectories[key]
        frames = [trajectory.get_atoms(i, labels=False) for i in range(trajectory.num_frames)]
        scores = density.score(frames, model)
        unknown_here = 0
        for index, (frame, score) in enumerate(zip(frames, scores)):
            flagged = np.flatnonzero(score['unknown'])
            total_atoms += len(frame)
            unknown_here += len(flagged)
            if not len(flagged):
                continue
            clusters = extract_clusters(
                frame,
                flagged,
                uncertainty=score['uncertainty'],
                mantle_depth=options['mantle_depth'],
                merge_depth=options['merge_depth'],
                vacuum=options['vacuum'],
                max_clusters=options['max_clusters'],
            )
            for cluster in clusters:
                seed = int(cluster.info['seed_atom'])
                u = float(score['uncertainty'][seed])
                cluster.info.update(
                    uncertainty=u if np.isfinite(u) else 1e300, walk=key, frame=index, cycle=options['cycle']
                )
                candidates.append(cluster)
        frames_scanned += len(frames)
        total_unknown += unknown_here
        per_walk[key] = {'frames': len(frames), 'unknown_atoms': unknown_here}
    candidates.sort(key=lambda cluster: -cluster.info['uncertainty'])
    chosen = candidates[: options['max_clusters']]
    scan = {
        'cycle': options['cycle'],
        'frames': frames_scanned,
        'atoms': total_atoms,
        'unknown_atoms': total_unknown,
        'unknown_fraction': total_unknown / total_atoms if total_atoms else 0.0,
        'candidate_clusters': len(candidates),
        'clusters': len(chosen),
        'per_walk': per_walk,
    }
    outputs = {'scan': orm.Dict(scan)}
    if chosen:
        outputs['clusters'] = DatasetData(chosen)
    return outputs


@calcfunction
def record_cycle(
    cycle: orm.Int, training: DatasetData, metrics: orm.Dict, evaluated_on: orm.Str, scan: orm.Dict | None = None
) -> orm.Dict:
    """One row of the campaign's learning curve: data set size, unknown fraction, and the model's errors.

    ``evaluated_on`` says which set the errors are of: ``test`` (held out) or ``training`` (no test set).
    """
    values = metrics.get_dict()
    k = int(values.get('percentile_k', 95))
    row = {
        'cycle': cycle.value,
        'evaluated_on': evaluated_on.value,
        'training_configurations': training.count,
        'training_atoms': training.base.attributes.get('num_atoms'),
        'training_config_types': training.config_types,
        'force_mae_pk_ev_per_a': values.get(f'force_mae_p{k}_ev_per_a'),
        'percentile_k': k,
        'force_rmse_ev_per_a': values.get('force_rmse_ev_per_a'),
        'force_mae_ev_per_a': values.get('force_mae_ev_per_a'),
        'delta_e_avg_ev_per_atom': values.get('delta_e_avg_ev_per_atom'),
        'delta_e_std_ev_per_atom': values.get('delta_e_std_ev_per_atom'),
    }
    if scan is not None:
        scanned = scan.get_dict()
        row.update(
            frames_scanned=scanned['frames'],
            atoms_scanned=scanned['atoms'],
            unknown_fraction=scanned['unknown_fraction'],
            clusters_extracted=scanned['clusters'],
        )
    return orm.Dict(row)
