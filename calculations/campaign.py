"""Calcfunctions of the active-learning campaign: initial data, scanning and extraction, splitting, records.

Each is a pure transformation of stored nodes, so that every cluster that enters the training set can be traced
to the MD frame, the model and the density model that flagged it.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data import DatasetData

__all__ = (
    'clusters_from_scan',
    'fit_density_from_features',
    'initial_dataset',
    'isolated_energies_of',
    'md_test_frames',
    'record_cycle',
    'scan_and_extract',
    'scan_frames',
    'split_by_set',
)


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
def md_test_frames(settings: orm.Dict, **trajectories: orm.Data) -> DatasetData:
    """Return the test configurations of a campaign: ``frames`` frames of each target's test walk, unlabelled.

    ``settings``: ``frames`` (per target), ``targets`` (trajectory keyword → target name) and optionally ``usable``
    (trajectory keyword → how many of its first frames may be used: a walk that failed). The frames are
    spread over the second half of each walk (:func:`~aiida_mofal.campaign.initial.pick_test_frames`); each
    records ``campaign_set='test'``, its target and its frame index, so that a labelled test frame can be traced to
    the MD step it came from.
    """
    from aiida_mofal.campaign.initial import pick_test_frames

    options = settings.get_dict()
    usable = options.get('usable') or {}
    chosen = []
    for key, target in sorted(options['targets'].items()):
        trajectory = trajectories[key]
        for index in pick_test_frames(int(usable.get(key, trajectory.num_frames)), int(options['frames'])):
            atoms = trajectory.get_atoms(index, labels=False)
            atoms.info.update(
                config_type='periodic', charge=0, multiplicity=1, campaign_set='test', target=target, frame=index,
                campaign_origin='test_md',
            )  # fmt: skip
            chosen.append(atoms)
    if not chosen:
        raise ValueError('the test-set walks gave no frame after their first: make initial.test_steps longer.')
    return DatasetData(chosen)


@calcfunction
def isolated_energies_of(dataset: DatasetData) -> orm.Dict:
    """Return the isolated-atom energies a stored data set carries: the Dict later labels are referenced to."""
    return orm.Dict(dict(dataset.isolated_atom_energies))


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


def _walk_frames(walks: orm.Dict, trajectories: dict) -> tuple[list[dict], list[list]]:
    """Return the walk records (sorted by target and walk) and, per walk, the frames of its trajectory."""
    records = walks.get_dict()
    keys = sorted(records, key=lambda key: (records[key]['target'], records[key]['walk']))
    missing = sorted(set(keys) - set(trajectories))
    if missing:
        raise ValueError(f'walks {missing} have no trajectory among the inputs.')
    frames = []
    for key in keys:
        trajectory = trajectories[key]
        frames.append([trajectory.get_atoms(index, labels=False) for index in range(trajectory.num_frames)])
    return [records[key] for key in keys], frames


def _scan_outputs(summary: dict, clusters: list) -> dict[str, orm.Data]:
    outputs = {'scan': orm.Dict(summary)}
    if clusters:
        outputs['clusters'] = DatasetData(clusters)
    return outputs


@calcfunction
def scan_and_extract(
    model: orm.Data,
    density: orm.Data,
    settings: orm.Dict,
    walks: orm.Dict,
    mantle: orm.Dict | None = None,
    **trajectories: orm.Data,
) -> dict[str, orm.Data]:
    """Score every atom of every frame of the ``trajectories`` here; cut clusters around the unknown ones.

    For small systems (the features of all frames are computed in this process, with one model load).
    ``walks`` maps each trajectory keyword to its walk record (``target``, ``walk``, ...); ``settings``: the
    campaign file's ``extract`` section plus ``cycle``. Outputs ``scan`` (Dict: frames, atoms, unknown atoms and
    fraction, per walk) and, when any atom is unknown, ``clusters`` (an unlabelled ``mofal.dataset``, most
    uncertain first; see :func:`aiida_mofal.campaign.scan.scan_walks`). With ``mantle_depth: auto`` the depth
    is the ``chosen_depth`` of ``mantle`` (:func:`aiida_mofal.calculations.mantle.choose_mantle_depth`).
    """
    from aiida_mofal.campaign.scan import scan_walks

    from .mantle import mantle_depth_of

    options = settings.get_dict()
    options['mantle_depth'] = mantle_depth_of(options, mantle)
    references = _references(options, trajectories)
    records, frames = _walk_frames(walks, trajectories)
    everything = [atoms for walk_frames in frames for atoms in walk_frames]
    scored, unscored = _score_each(density, model, everything)
    scores = iter(scored)
    per_walk = [[next(scores) for _ in walk_frames] for walk_frames in frames]
    summary, clusters = scan_walks(records, frames, per_walk, options, options['cycle'], references)
    if unscored:  # which frames, in the walk order of ``records``
        positions = [
            (record, index) for record, walk_frames in zip(records, frames) for index in range(len(walk_frames))
        ]
        summary['skipped_frames'] += [
            {'target': positions[i][0]['target'], 'walk': int(positions[i][0]['walk']), 'frame': positions[i][1],
             'reason': f'cannot be scored: {reason}'}
            for i, reason in unscored
        ]  # fmt: skip
    return _scan_outputs(summary, clusters)


def _references(options: dict, nodes: dict) -> dict:
    """Pop the ``reference_*`` structures out of ``nodes``; return target → ``Atoms`` per ``options['references']``.

    The work chain passes each target's structure as ``reference_<i>`` and names them in the settings'
    ``references`` (target → keyword), so that the graph shows which topology the clusters were cut with.
    """
    structures = {key: nodes.pop(key) for key in [k for k in nodes if k.startswith('reference_')]}
    names = options.get('references') or {}
    missing = sorted(set(names.values()) - set(structures))
    if missing:
        raise ValueError(f'settings name reference structures {missing} that are not among the inputs.')
    return {target: structures[key].get_ase() for target, key in names.items()}


def _score_each(density, model, frames: list) -> tuple[list[dict], list[tuple[int, str]]]:
    """Score all ``frames`` in one pass; if that fails, frame by frame, so one bad frame costs only itself.

    A frame that cannot be scored (NaN positions from a walk that blew up, an element the model lacks) gets
    all-known scores (it yields no cluster) and is returned in the second list with the reason.
    """
    if not frames:
        return [], []
    try:
        return list(density.score(frames, model)), []
    except Exception:  # noqa: BLE001 -- find the culprit below
        pass
    scored, unscored = [], []
    for index, atoms in enumerate(frames):
        try:
            scored.append(density.score([atoms], model)[0])
        except Exception as error:  # noqa: BLE001 -- one bad frame never ends a campaign
            unscored.append((index, f'{type(error).__name__}: {error}'))
            scored.append({'uncertainty': np.zeros(len(atoms)), 'unknown': np.zeros(len(atoms), dtype=bool)})
    return scored, unscored


@calcfunction
def scan_frames(walks: orm.Dict, **trajectories: orm.Data) -> DatasetData:
    """Gather the frames of every walk into one unlabelled data set: the input of a ``mofal.mace.evaluate`` scan.

    Each frame records ``target``, ``walk`` and ``frame`` (its index in the walk's trajectory) in its info.
    """
    records, frames = _walk_frames(walks, trajectories)
    gathered = []
    for record, walk_frames in zip(records, frames):
        for index, atoms in enumerate(walk_frames):
            atoms.info.update(target=record['target'], walk=int(record['walk']), frame=index)
            gathered.append(atoms)
    return DatasetData(gathered)


@calcfunction
def clusters_from_scan(
    frames: DatasetData,
    scan: orm.ArrayData,
    settings: orm.Dict,
    mantle: orm.Dict | None = None,
    **references: orm.StructureData,
) -> dict[str, orm.Data]:
    """Cut clusters around the atoms that a ``mofal.mace.evaluate`` scan job called unknown in ``frames``.

    The same outputs as :func:`scan_and_extract`, from the job's per-atom ``uncertainty`` and ``unknown`` arrays
    instead of features computed here.
    """
    from aiida_mofal.campaign.scan import scan_walks, split_scores

    from .mantle import mantle_depth_of

    options = settings.get_dict()
    options['mantle_depth'] = mantle_depth_of(options, mantle)
    topology = _references(options, dict(references))
    atoms = frames.get_atoms()
    scores = split_scores(
        scan.get_array('structure_index'),
        scan.get_array('uncertainty'),
        scan.get_array('unknown'),
        [len(a) for a in atoms],
    )
    records, per_walk_frames, per_walk_scores = [], [], []
    for frame, score in zip(atoms, scores):
        walk = {'target': frame.info['target'], 'walk': int(frame.info['walk'])}
        if not records or records[-1] != walk:
            records.append(walk)
            per_walk_frames.append([])
            per_walk_scores.append([])
        per_walk_frames[-1].append(frame)
        per_walk_scores[-1].append(score)
    summary, clusters = scan_walks(records, per_walk_frames, per_walk_scores, options, options['cycle'], topology)
    return _scan_outputs(summary, clusters)


@calcfunction
def fit_density_from_features(model: orm.Data, features: orm.ArrayData, settings: orm.Dict) -> orm.Data:
    """Fit the density model of ``model`` on the features a ``mofal.mace.evaluate`` job computed (scan mode).

    The same fit as ``fit_density_model``, which computes the features in its own process; here a job on the
    campaign's scan code computed them (``features`` and ``numbers`` arrays of its ``scan`` output).
    """
    from ase.data import chemical_symbols

    from aiida_mofal.data.density_model import DensityModelData
    from aiida_mofal.uncertainty.gmm import DensityModel

    options = DensityModel.validate_settings(settings.get_dict())
    symbols = [chemical_symbols[number] for number in features.get_array('numbers')]
    groups = features.get_array('structure_index') if 'structure_index' in features.get_arraynames() else None
    density = DensityModel.fit(features.get_array('features'), symbols, groups=groups, **options)
    return DensityModelData(density, model=model)


@calcfunction
def record_cycle(
    cycle: orm.Int,
    training: DatasetData,
    metrics: orm.Dict,
    evaluated_on: orm.Str,
    processes: orm.Dict,
    scan: orm.Dict | None = None,
    **test_sets: orm.Dict,
) -> orm.Dict:
    """One row of the campaign's learning curve: data set size, unknown fraction, and the model's errors.

    ``test_sets``: the metrics of the model on each extra test set of the campaign file, as ``test_<name>``;
    the row's ``test_sets`` holds MAE_pk, RMSE, ΔE_avg and ΔE_std of each, by name.

    ``evaluated_on`` says which set the errors are of: ``test`` (held out) or ``training`` (no test set).
    ``processes`` is what the work chain knows of the cycle's processes: the UUIDs of its walks (with their
    target, walk index, pressure, seed and whether they finished), label, training, density fit, scan and
    evaluation, the clusters labelled, the failures and the wall time. Every query of a cycle starts from here
    (``aiida_mofal.campaign.queries``), never from a link label.
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
        **processes.get_dict(),
    }
    if scan is not None:
        scanned = scan.get_dict()
        row.update(
            frames_scanned=scanned['frames'],
            atoms_scanned=scanned['atoms'],
            unknown_fraction=scanned['unknown_fraction'],
            clusters_extracted=scanned['clusters'],
        )
    if test_sets:
        row['test_sets'] = {key[len('test_') :]: _errors(node.get_dict()) for key, node in sorted(test_sets.items())}
    return orm.Dict(row)


def _errors(values: dict) -> dict:
    """Return the learning-curve errors of one evaluation's metrics (eV/Å, eV/atom)."""
    k = int(values.get('percentile_k', 95))
    keys = ('force_rmse_ev_per_a', 'delta_e_avg_ev_per_atom', 'delta_e_std_ev_per_atom', 'structures')
    return {'force_mae_pk_ev_per_a': values.get(f'force_mae_p{k}_ev_per_a'), 'percentile_k': k,
            **{key: values.get(key) for key in keys}}  # fmt: skip
