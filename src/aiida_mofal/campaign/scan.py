"""The scan step of a cycle, pure: per-atom scores of MD frames in, candidate clusters and a summary out.

The scores (per-atom ``uncertainty`` and ``unknown``) come either from the density model in the calling process
(small systems) or from a ``mofal.mace.evaluate`` job in scan mode (large systems); the same function turns them
into clusters, so both routes label the same clusters. Every cluster records where it came from in ``info``:
``target``, ``walk`` (the walk's index within its target), ``frame``, ``cycle``, ``seed_atom``, ``uncertainty``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

from aiida_mofal.selection.ranking import rank_clusters, seed_uncertainty

__all__ = ('EXTRACT_KEYS', 'scan_walks', 'split_scores')

EXTRACT_KEYS = ('mantle_depth', 'merge_depth', 'vacuum', 'max_clusters')
"""The campaign file's ``extract`` settings that the scan uses."""


def split_scores(structure_index: np.ndarray, uncertainty: np.ndarray, unknown: np.ndarray, sizes: Sequence[int]):
    """Cut the flat per-atom arrays of a scan job (``scan.npz``) back into one score dict per frame."""
    structure_index = np.asarray(structure_index)
    if len(structure_index) != sum(sizes):
        raise ValueError(f'the scan holds {len(structure_index)} atoms but the frames have {sum(sizes)}.')
    scores = []
    for index, size in enumerate(sizes):
        selected = structure_index == index
        if int(selected.sum()) != size:
            raise ValueError(f'the scan holds {int(selected.sum())} atoms of frame {index}, which has {size}.')
        scores.append({'uncertainty': np.asarray(uncertainty)[selected], 'unknown': np.asarray(unknown)[selected]})
    return scores


def _labelable(cluster: Atoms) -> Atoms:
    """Return ``cluster`` checked as a data-set configuration (so one bad cluster fails its frame, not the scan)."""
    from aiida_mofal.mlp.configurations import validate_configuration

    validate_configuration(cluster, 'cluster')
    return cluster


def scan_walks(
    walks: Sequence[Mapping],
    frames: Sequence[Sequence[Atoms]],
    scores: Sequence[Sequence[Mapping]],
    settings: Mapping,
    cycle: int,
    references: Mapping | None = None,
) -> tuple[dict, list[Atoms]]:
    """Cut clusters around the unknown atoms of every frame, rank them all together and cap them.

    :param walks: one record per walk, with at least ``target`` and ``walk`` (copied into each cluster's info).
    :param frames: per walk, its frames.
    :param scores: per walk, one dict per frame with per-atom ``uncertainty`` and ``unknown`` arrays.
    :param settings: ``mantle_depth``, ``merge_depth``, ``vacuum``, ``max_clusters``.
    :param references: target name → its structure (``Atoms``) or its building blocks: the blocks of a frame are
        then the target's, mapped onto the frame (``structures.blocks.map_blocks``), not recomputed from the
        frame's bond lengths, which MD distorts. Targets without one get blocks from their frames.
    :returns: the summary (frames, atoms, unknown atoms and fraction, candidate and chosen clusters, per walk,
        ``skipped_frames``) and the chosen clusters, most uncertain first. A frame whose clusters cannot be cut
        (a walk that broke a bond and left an H dangling, say: no formal charges, so no labelable cluster) is
        skipped and listed with the reason; its unknown atoms still count.
    """
    from aiida_mofal.clusters.extract import extract_clusters
    from aiida_mofal.structures.blocks import find_blocks, map_blocks

    options = {key: settings[key] for key in EXTRACT_KEYS}
    topology = {
        name: (find_blocks(value) if isinstance(value, Atoms) else value) for name, value in (references or {}).items()
    }
    candidates, per_walk, skipped = [], [], []
    total_atoms = total_unknown = total_frames = 0
    for walk, walk_frames, walk_scores in zip(walks, frames, scores, strict=True):
        unknown_here = 0
        for index, (frame, score) in enumerate(zip(walk_frames, walk_scores, strict=True)):
            flagged = np.flatnonzero(score['unknown'])
            total_atoms += len(frame)
            unknown_here += len(flagged)
            if not len(flagged):
                continue
            try:
                reference = topology.get(walk['target'])
                blocks = None if reference is None else map_blocks(reference, frame)
                frame_clusters = extract_clusters(
                    frame, flagged, uncertainty=score['uncertainty'], blocks=blocks, **options
                )
                frame_clusters = [_labelable(cluster) for cluster in frame_clusters]
            except Exception as error:  # noqa: BLE001 -- one bad frame (a dangling H, ...) never ends a campaign
                reason = str(error) if isinstance(error, ValueError) else f'{type(error).__name__}: {error}'
                skipped.append({'target': walk['target'], 'walk': int(walk['walk']), 'frame': index, 'reason': reason})
                continue
            for cluster in frame_clusters:
                cluster.info.update(
                    uncertainty=seed_uncertainty(cluster, score['uncertainty']),
                    target=walk['target'],
                    walk=int(walk['walk']),
                    frame=index,
                    cycle=cycle,
                )
                candidates.append(cluster)
        total_frames += len(walk_frames)
        total_unknown += unknown_here
        per_walk.append(
            {
                'target': walk['target'],
                'walk': int(walk['walk']),
                'frames': len(walk_frames),
                'unknown_atoms': unknown_here,
            }
        )
    chosen = rank_clusters(candidates, options['max_clusters'])
    summary = {
        'cycle': cycle,
        'frames': total_frames,
        'atoms': total_atoms,
        'unknown_atoms': total_unknown,
        'unknown_fraction': total_unknown / total_atoms if total_atoms else 0.0,
        'candidate_clusters': len(candidates),
        'clusters': len(chosen),
        'per_walk': per_walk,
        'skipped_frames': skipped,
    }
    return summary, chosen
