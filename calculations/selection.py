"""Calcfunctions that choose configurations, so that a selection is a step of the provenance graph."""

from __future__ import annotations

import difflib

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from ase import Atoms

from aiida_mofal.data import DatasetData
from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.selection.cbad import CbadError, CbadOccupancy, CbadTopology, check_numbers, check_resolutions

__all__ = ['MODES', 'SOURCE_FRAME_KEY', 'SOURCE_TRAJECTORY_KEY', 'cbad_settings', 'intact_prefix', 'select_cbad']

#: ``sequential``: every frame CBAD accepts, trajectory after trajectory; ``best_per_trajectory``: at most one frame
#: per trajectory (the one adding most new pairs), as the temperature campaign keeps at most one per MD run.
MODES = ('sequential', 'best_per_trajectory')
SOURCE_TRAJECTORY_KEY = 'source_trajectory'
SOURCE_FRAME_KEY = 'source_frame'
_SETTINGS = ('resolutions', 'mode', 'intact_only')


def cbad_settings(settings: dict) -> dict:
    """Return the validated settings: ``resolutions`` (defaults filled in) and ``mode`` (see :data:`MODES`)."""
    for key in settings:
        if key not in _SETTINGS:
            close = difflib.get_close_matches(str(key), _SETTINGS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ''
            raise CbadError(f'unknown select_cbad setting {key!r}; the settings are {", ".join(_SETTINGS)}.{hint}')
    mode = settings.get('mode', 'sequential')
    if mode not in MODES:
        raise CbadError(f'select_cbad mode {mode!r} is not one of {", ".join(MODES)}.')
    intact_only = settings.get('intact_only', False)
    if not isinstance(intact_only, bool):
        raise CbadError(f'select_cbad intact_only must be true or false, got {intact_only!r}.')
    return {'resolutions': check_resolutions(settings.get('resolutions')), 'mode': mode, 'intact_only': intact_only}


def intact_prefix(reference: Atoms, positions: np.ndarray, cells: np.ndarray) -> int:
    """Return how many leading frames keep every covalent bond of ``reference`` (none broken, none formed).

    The criteria are those of :func:`aiida_mofal.analysis.integrity.bond_changes` (a C–H bond breaks beyond
    1.61 Å). A frame past the first change is a potential that left its domain: CBAD would rate it the most
    novel (its broken bond sits in bins nothing else reaches), and a label of it is no use (xTB's SCF does not
    even converge on a framework that lost an H, measured).
    """
    from aiida_mofal.analysis.integrity import bond_changes

    first = bond_changes(reference, positions, cells, list_frames=False)['summary']['first_change_frame']
    return len(positions) if first is None else int(first)


@calcfunction
def select_cbad(
    reference: orm.StructureData,
    settings: orm.Dict,
    occupancy: orm.Dict | None = None,
    training_set: DatasetData | None = None,
    **trajectories: MdTrajectoryData,
) -> dict:
    """CBAD-select frames of ``trajectories`` against the occupancy of ``occupancy`` and/or ``training_set``.

    Trajectories are taken in the sorted order of their keys (``run_000``, ``run_001``, ...), frames in their
    order. Outputs: ``dataset`` (unlabelled ``mofal.dataset`` of the chosen frames, each with
    ``info['source_trajectory']`` = the trajectory's UUID and ``info['source_frame']`` = its 0-based frame index),
    ``occupancy`` (the occupancy after selection: the next selection's ``occupancy`` input) and ``report``
    (counts per trajectory and the chosen frames as records).
    """
    options = cbad_settings(settings.get_dict())
    if not trajectories:
        raise CbadError('select_cbad needs at least one mofal.trajectory (as keyword inputs).')
    for key, node in trajectories.items():
        if not isinstance(node, MdTrajectoryData):
            raise CbadError(f'input {key!r} is a {type(node).__name__}, not a mofal.trajectory.')
    reference_atoms = reference.get_ase()
    topology = CbadTopology.from_reference(reference_atoms)
    state = CbadOccupancy(options['resolutions'])
    if occupancy is not None:
        state = CbadOccupancy.from_dict(occupancy.get_dict())
        state.check_compatible(options['resolutions'])
    if training_set is not None:
        state.add(topology, training_set.get_atoms())
    start_pairs = len(state)

    chosen, records, runs = [], [], []
    for key in sorted(trajectories):
        node = trajectories[key]
        if not all(node.pbc):
            raise CbadError(f'trajectory {key!r} is not periodic in 3D; CBAD frames need the full cell.')
        check_numbers(topology, node.numbers)
        positions, cells = node.get_array('positions'), node.get_array('cells')
        n_frames = len(positions)
        if options['intact_only']:  # only the frames before the run's first broken or formed bond
            intact = intact_prefix(reference_atoms, positions, cells)
            positions, cells = positions[:intact], cells[:intact]
        if not len(positions):
            picked = []
        elif options['mode'] == 'sequential':
            picked = [(int(i), None) for i in state.select(topology, positions, cells)]
        else:
            best = state.best_frame(topology, positions, cells)
            picked = [] if best.index is None else [(best.index, best.n_new)]
        steps = node.get_array('steps') if 'steps' in node.get_arraynames() else None
        for frame, n_new in picked:
            atoms = Atoms(numbers=node.numbers, positions=positions[frame], cell=cells[frame], pbc=True)
            atoms.info[SOURCE_TRAJECTORY_KEY] = node.uuid
            atoms.info[SOURCE_FRAME_KEY] = frame
            if steps is not None:
                atoms.info['md_step'] = int(steps[frame])
            chosen.append(atoms)
            records.append({'trajectory': node.uuid, 'frame': frame, **({'n_new': n_new} if n_new is not None else {})})
        runs.append({'trajectory': node.uuid, 'n_frames': n_frames, 'n_intact': int(len(positions)),
                     'n_selected': len(picked)})  # fmt: skip

    report = {
        'mode': options['mode'],
        'resolutions': options['resolutions'],
        'n_frames': int(np.sum([run['n_frames'] for run in runs])),
        'n_intact': int(np.sum([run['n_intact'] for run in runs])),
        'intact_only': options['intact_only'],
        'n_selected': len(chosen),
        'selected': records,
        'trajectories': runs,
        'atom_types': list(topology.atom_type_names),
        'descriptor_types': topology.family_counts(),
        'occupied_pairs': {'start': start_pairs, 'end': len(state)},
        'occupied_per_family': state.family_counts(),
    }
    return {'dataset': DatasetData(chosen), 'occupancy': orm.Dict(state.to_dict()), 'report': orm.Dict(report)}
