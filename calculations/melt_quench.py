"""The leaves of a melt-quench besides its MD: the supercell, each stage's integrity check, and the glass analysis.

Calcfunctions, so that the provenance graph shows which crystal a glass came from, which trajectory each verdict and
each analysis read, and with which parameters. The science is in :mod:`aiida_mofal.analysis.integrity` and
:mod:`aiida_mofal.analysis.glass`; these functions only move nodes in and out.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data.trajectory import MdTrajectoryData

__all__ = ['analyse_glass_trajectory', 'make_supercell', 'merge_integrity', 'stage_integrity']


@calcfunction
def make_supercell(structure: orm.StructureData, supercell: orm.List) -> orm.StructureData:
    """Return ``structure`` repeated ``supercell = [na, nb, nc]`` times (ZIF-4 2×2×2: 2176 atoms)."""
    return orm.StructureData(ase=structure.get_ase().repeat(tuple(int(n) for n in supercell.get_list())))


@calcfunction
def stage_integrity(reference: orm.StructureData, trajectory: MdTrajectoryData, policy: orm.Dict) -> orm.Dict:
    """Return the integrity record of one stage's frames against the starting crystal, with the verdict.

    Every stage is compared with the *crystal* (the supercell before any MD), not with the stage's own first frame:
    a bond stretched at the end of one stage must not drop out of the next stage's reference graph. ``policy``:
    ``fail_on_formed`` (a new non-metal bond fails too; broken ones always do). ``failure_reason`` names the
    bonds (elements, atom indices, first frame).
    """
    from aiida_mofal.analysis.integrity import failure_reason, integrity_record

    record = integrity_record(
        reference.get_ase(),
        trajectory.get_array('positions'),
        trajectory.get_array('cells'),
        trajectory.get_array('steps'),
        fail_on_broken=False,
    )
    reason = failure_reason(record, fail_on_broken=True, fail_on_formed=bool(policy.get('fail_on_formed', True)))
    record.update(failed=reason is not None, failure_reason=reason, reference='crystal')
    return orm.Dict(record)


@calcfunction
def merge_integrity(attempts: orm.List, **records: orm.Dict) -> orm.Dict:
    """Return one glass's integrity record: every stage's summary (``<stage>`` keywords) and the verdict.

    ``attempts`` are the stages that failed before (stage, reason, T_max: what ``handle_broken_linkers`` retried).
    """
    stages = {name: {**record['summary'], 'failed': record['failed'], 'failure_reason': record['failure_reason'],
                     'n_frames': record['n_frames'], 'steps': [record['steps'][0], record['steps'][-1]]}
              for name, record in records.items()}  # fmt: skip
    return orm.Dict({
        'intact': all(stage['intact'] for stage in stages.values()),
        'failed': any(stage['failed'] for stage in stages.values()),
        'max_broken': max(stage['max_broken'] for stage in stages.values()),
        'max_formed': max(stage['max_formed'] for stage in stages.values()),
        'n_reference_bonds': next(iter(records.values()))['n_reference_bonds'],
        'reference': 'crystal',
        'stages': stages,
        'failed_attempts': attempts.get_list(),
        'fallback_used': bool(attempts.get_list()),
    })  # fmt: skip


@calcfunction
def analyse_glass_trajectory(
    trajectory: MdTrajectoryData, parameters: orm.Dict, reference: orm.StructureData | None = None
) -> orm.Dict:
    """Return :func:`aiida_mofal.analysis.glass.analyse_glass` of the frames of ``trajectory`` (the measurement).

    ``parameters``: options of :class:`~aiida_mofal.analysis.glass.GlassSettings` (pairs, temperature, cutoff, ...).
    With ``reference`` (the crystal supercell) the result says how far the glass is from it.
    """
    from aiida_mofal.analysis.glass import analyse_glass

    frames = [trajectory.get_atoms(index, labels=False) for index in range(len(trajectory))]
    crystal = reference.get_ase() if reference is not None else None
    return orm.Dict(analyse_glass(frames, reference=crystal, **parameters.get_dict()))
