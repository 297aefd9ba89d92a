"""Which clusters a cycle labels: rank the candidates of all frames by the uncertainty of their seed atom, cap.

The cluster paper labels a fixed budget of clusters per cycle (about 150), the most uncertain first (SCIENCE.md §3).
Candidates come from every frame of every walk; ranking them together, rather than per frame, spends the budget
where the model is least sure. Pure functions of ASE ``Atoms`` and numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

__all__ = ('STORED_INFINITY', 'rank_clusters', 'seed_uncertainty')

STORED_INFINITY = 1e300
"""What an infinite uncertainty (an element the density model has never seen) is stored as in a cluster's
``info``: data sets are written as extxyz, which keeps finite numbers only."""


def seed_uncertainty(cluster: Atoms, uncertainty: np.ndarray) -> float:
    """Return the uncertainty of the frame atom ``cluster.info['seed_atom']`` the cluster was cut around."""
    value = float(np.asarray(uncertainty, dtype=float)[int(cluster.info['seed_atom'])])
    if np.isnan(value):
        raise ValueError(
            f'the uncertainty of seed atom {cluster.info["seed_atom"]} is NaN; the density model is broken.'
        )
    return min(value, STORED_INFINITY)


def rank_clusters(candidates: Sequence[Atoms], max_clusters: int) -> list[Atoms]:
    """Return at most ``max_clusters`` of ``candidates``, highest ``info['uncertainty']`` first.

    The sort is stable: among equally uncertain clusters the earlier candidate (walk, then frame order) wins, so
    the same scan always labels the same clusters.
    """
    if max_clusters < 1:
        raise ValueError(f'max_clusters must be at least 1, got {max_clusters}.')
    order = sorted(range(len(candidates)), key=lambda index: -float(candidates[index].info['uncertainty']))
    return [candidates[index] for index in order[:max_clusters]]
