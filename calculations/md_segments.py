"""Join the segments of a restarted MD walk into one trajectory (a calcfunction, so the graph shows the join)."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data.trajectory import FRAME_ARRAYS, MdTrajectoryData

__all__ = ['join_trajectories']

_SHIFTED = {'steps': 'step', 'times': 'time'}


def _chronological(nodes: list[orm.Data]) -> list[orm.Data]:
    """Segments in the order they were made (a walk's jobs run one after the other)."""
    return sorted(nodes, key=lambda node: (node.ctime, node.pk))


def _append(target: dict[str, list], arrays: dict[str, np.ndarray], keep: np.ndarray, offsets: dict) -> None:
    for key, value in arrays.items():
        target.setdefault(key, []).append(value[keep] + offsets.get(key, 0))


@calcfunction
def join_trajectories(structure: orm.StructureData, settings: orm.Dict, **segments: orm.Data) -> dict:
    """Join the segments of one restarted walk into one trajectory, its integrity record (and QEq charges).

    ``segments`` are the walk's ``mofal.trajectory`` nodes (and, for ReaxFF, its ``charges`` arrays), in any order
    and under any names: they are ordered by creation time. Segment ``k`` continued from the last good state of
    segment ``k-1``: its steps and times are shifted by the steps and time completed before it (the attributes
    ``completed_steps``/``completed_time``), and its first frame is dropped when it repeats the previous last frame.
    """
    from aiida_mofal.analysis.integrity import integrity_record

    trajectories = _chronological([node for node in segments.values() if isinstance(node, MdTrajectoryData)])
    charges = _chronological([node for node in segments.values() if not isinstance(node, MdTrajectoryData)])
    frames: dict[str, list] = {}
    thermo: dict[str, list] = {}
    joined_charges: dict[str, list] = {}
    step_offset, time_offset = 0, 0.0
    for position, segment in enumerate(trajectories):
        arrays = {key: segment.get_array(key) for key in segment.get_arraynames() if key in FRAME_ARRAYS}
        repeated = bool(frames) and len(arrays['steps']) and arrays['steps'][0] + step_offset == frames['steps'][-1][-1]
        keep = np.arange(len(arrays['steps'])) >= (1 if repeated else 0)
        _append(frames, arrays, keep, {'steps': step_offset, 'times': time_offset})
        if position < len(charges):
            values = {key: charges[position].get_array(key) for key in ('steps', 'charges')}
            _append(joined_charges, values, keep, {'steps': step_offset})
        segment_thermo = segment.get_thermo()
        if segment_thermo:
            repeated = bool(thermo) and segment_thermo['step'][0] + step_offset == thermo['step'][-1][-1]
            keep = np.arange(len(segment_thermo['step'])) >= (1 if repeated else 0)
            _append(thermo, segment_thermo, keep, {'step': step_offset, 'time': time_offset})
        step_offset += int(segment.base.attributes.get('completed_steps', 0))
        time_offset += float(segment.base.attributes.get('completed_time', 0.0))
    joined = {key: np.concatenate(value) for key, value in frames.items()}
    first, last = trajectories[0].base.attributes, trajectories[-1].base.attributes
    kept = ('walk', 'seed', 'temperature', 'pressure', 'protocol', 'total_steps')
    trajectory = MdTrajectoryData(
        joined,
        {key: np.concatenate(value) for key, value in thermo.items()},
        numbers=trajectories[0].numbers,
        pbc=trajectories[0].pbc,
        engine=trajectories[0].engine,
        timestep=first.get('timestep', None),
        ensemble=first.get('ensemble', ''),
        extra_attributes={
            **{key: first.get(key, None) for key in kept},
            'segments': len(trajectories),
            'completed_steps': step_offset,
            'completed_time': time_offset,
            'status': last.get('status', None),
        },
    )
    record = integrity_record(
        structure.get_ase(), joined['positions'], joined['cells'], joined['steps'],
        fail_on_broken=bool(settings['fail_on_broken_bonds']),
    )  # fmt: skip
    outputs = {'trajectory': trajectory, 'integrity': orm.Dict(record)}
    if joined_charges:
        outputs['charges'] = orm.ArrayData({key: np.concatenate(value) for key, value in joined_charges.items()})
    return outputs
