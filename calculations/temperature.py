"""Calcfunctions of the temperature campaign: step-0 perturbations, run starts, the test ramp's frames, records.

Each is a pure transformation of stored nodes, so that every configuration of the training and test sets can be
traced to the perturbation or the MD frame it came from (CBAD selection itself is :func:`select_cbad`).
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data import DatasetData
from aiida_mofal.data.trajectory import MdTrajectoryData

__all__ = (
    'displaced_starts',
    'intact_frame_count',
    'perturbed_frames',
    'ramp_test_set',
    'random_frames',
    'record_temperature_step',
)

#: the metrics of a step's row, as ``evaluate_model`` names them (the paper's three RMSEs and MAE_p95)
ERROR_KEYS = ('energy_rmse_ev_per_atom', 'force_rmse_ev_per_a', 'stress_rmse_gpa', 'force_mae_ev_per_a')


@calcfunction
def perturbed_frames(structure: orm.StructureData, settings: orm.Dict) -> MdTrajectoryData:
    """Step 0's candidates: ``candidates`` perturbed copies of ``structure``, as one trajectory for CBAD.

    ``settings``: ``candidates``, ``rattle`` (Å, Gaussian on every atom), ``strain`` (max |ε| of a random symmetric
    cell strain) and ``seed``. Stored as a ``mofal.trajectory`` (``engine='perturbation'``) so that
    :func:`~aiida_mofal.calculations.selection.select_cbad` reads them as it reads MD, frame by frame.
    """
    from aiida_mofal.campaign.initial import perturbed_copies

    options = settings.get_dict()
    atoms = structure.get_ase()
    rng = np.random.default_rng(options['seed'])
    copies = perturbed_copies(atoms, options['candidates'], options['rattle'], options['strain'], rng)
    frames = {'positions': np.stack([c.positions for c in copies]), 'cells': np.stack([c.cell.array for c in copies])}
    frames['steps'] = np.arange(len(copies))
    return MdTrajectoryData(frames, numbers=atoms.numbers, pbc=atoms.pbc, engine='perturbation')


@calcfunction
def displaced_starts(structure: orm.StructureData, settings: orm.Dict) -> dict[str, orm.StructureData]:
    """Return the starts of a step's runs: ``runs`` copies of ``structure``, each displaced at random.

    ``settings``: ``runs``, ``rattle`` (Å) and ``seed`` (the campaign's seed and the step make it). Outputs
    ``run_000``, ``run_001``, ...
    """
    options = settings.get_dict()
    rng = np.random.default_rng(options['seed'])
    atoms = structure.get_ase()
    starts = {}
    for run in range(options['runs']):
        start = atoms.copy()
        start.positions += rng.normal(scale=options['rattle'], size=start.positions.shape)
        starts[f'run_{run:03d}'] = orm.StructureData(ase=start)
    return starts


@calcfunction
def ramp_test_set(trajectory: MdTrajectoryData, settings: orm.Dict) -> DatasetData:
    """``frames`` evenly spaced frames of the test ramp (its first frame, the start, excluded), unlabelled.

    Each frame records ``source_trajectory``, ``source_frame`` and ``campaign_set='test'`` in its info. With
    ``intact_only`` only the frames before the ramp's first broken or formed covalent bond are drawn from.
    """
    count = int(settings['frames'])
    available = intact_frame_count(trajectory, settings) - 1
    if available < 1:
        raise ValueError(f'the test ramp {trajectory.pk} has no frame after its start.')
    chosen = np.unique(np.linspace(1, available, min(count, available)).round().astype(int))
    return DatasetData([_unlabelled_frame(trajectory, index, 'test') for index in chosen.tolist()])


def intact_frame_count(trajectory: MdTrajectoryData, settings: orm.Dict) -> int:
    """Return the number of frames to draw from: all, or with ``intact_only`` those before the first bond change."""
    if not settings.get_dict().get('intact_only', False):
        return trajectory.num_frames
    from .selection import intact_prefix

    start = trajectory.get_atoms(0, labels=False)  # the reference of the bonds: the ramp's own start
    return intact_prefix(start, trajectory.get_array('positions'), trajectory.get_array('cells'))


def _unlabelled_frame(trajectory: MdTrajectoryData, index: int, campaign_set: str):
    atoms = trajectory.get_atoms(index, labels=False)
    atoms.info.update(source_trajectory=trajectory.uuid, source_frame=index, campaign_set=campaign_set)
    atoms.info.update(config_type='periodic', charge=0, multiplicity=1)
    return atoms


@calcfunction
def random_frames(trajectory: MdTrajectoryData, settings: orm.Dict) -> dict:
    """Draw ``count`` frames of the final ramp at random (seeded, no repeats): the paper's last additions.

    The start (frame 0, the reference with its displacement) is excluded; with fewer frames than ``count`` all of
    them are taken. With ``intact_only`` only the frames before the ramp's first broken or formed covalent bond are
    drawn from. Returns ``dataset`` (unlabelled, each frame with ``source_trajectory``, ``source_frame`` and
    ``campaign_set='random'`` in its info) and ``report`` (``n_frames``, ``n_selected``, ``frames``).
    """
    options = settings.get_dict()
    available = np.arange(1, intact_frame_count(trajectory, settings))
    if available.size == 0:
        raise ValueError(f'the final ramp {trajectory.pk} has no (intact) frame after its start.')
    rng = np.random.default_rng(options['seed'])
    chosen = np.sort(rng.choice(available, size=min(int(options['count']), available.size), replace=False))
    frames = [_unlabelled_frame(trajectory, index, 'random') for index in chosen.tolist()]
    report = {'n_frames': trajectory.num_frames - 1, 'n_intact': int(available.size), 'n_selected': len(frames),
              'frames': chosen.tolist(), 'mode': 'random'}  # fmt: skip
    return {'dataset': DatasetData(frames), 'report': orm.Dict(report)}


@calcfunction
def record_temperature_step(
    step: orm.Int,
    training: DatasetData,
    metrics: orm.Dict,
    evaluated_on: orm.Str,
    processes: orm.Dict,
    selection: orm.Dict,
    temperature: orm.Float | None = None,
) -> orm.Dict:
    """One row of the temperature campaign: the step's MD, what CBAD accepted, the training set and the errors.

    ``selection`` is the step's ``select_cbad`` report (frames seen, selected, occupancy per family);
    ``processes`` what the work chain knows of the step: runs, runs that gave a trajectory, configurations
    labelled, failures, the UUIDs of its processes and the wall time. ``temperature`` is absent at step 0 and
    at the final step of random configurations (``selection`` is then the report of :func:`random_frames`, which
    updates no CBAD occupancy: ``occupied_*`` are then null).
    """
    values = metrics.get_dict()
    chosen = selection.get_dict()
    k = int(values.get('percentile_k', 95))
    row = {
        'step': step.value,
        'temperature_k': None if temperature is None else temperature.value,
        'evaluated_on': evaluated_on.value,
        'frames_seen': chosen['n_frames'],
        'accepted': chosen['n_selected'],
        'training_configurations': training.count,
        'occupied_pairs': (chosen.get('occupied_pairs') or {}).get('end'),
        'occupied_per_family': chosen.get('occupied_per_family'),
        'percentile_k': k,
        'force_mae_pk_ev_per_a': values.get(f'force_mae_p{k}_ev_per_a'),
        **{key: values.get(key) for key in ERROR_KEYS},
        **processes.get_dict(),
    }
    return orm.Dict(row)
