"""Uncertainty-gated exploration: score a walk's frames with the density model while it runs; stop it early.

Fixed-length walks (the cluster paper: 500 fs) spend their steps whether or not the model has already left what it
knows. With a gate, the MD job computes the model's last-layer features of every ``every``-th dumped frame, scores
them with the campaign's density model (the same features and mixtures as the scan, SCIENCE.md §2), and ends the
walk -- as *finished*, not failed -- at the first checked frame whose unknown-atom fraction reaches
``unknown_fraction``. That frame, where unknown atoms appear, is the walk's last one: the scan cuts its clusters
from it and the frames before. The walk's record says where the first unknown atom appeared and where it stopped.

Nothing in MACE does this (ACEsuit/mace #568); FLARE does it for its own Gaussian processes only. The job pays one
feature pass per checked frame (no force backward pass, about a third of an MD step's cost). Shipped beside
``md_run.py`` as ``mofal_md/gate.py`` with copies of ``aiida_mofal.mlp.features`` and
``aiida_mofal.uncertainty.gmm``; needs numpy, ase, torch and mace-torch only.
"""

from __future__ import annotations

import time

import numpy as np

try:  # on the remote: the copies shipped beside md_run.py
    from mofal_md import features, gmm
except ImportError:  # run from a checkout with aiida-mofal installed
    from aiida_mofal.mlp import features
    from aiida_mofal.uncertainty import gmm

__all__ = ['Gate', 'GateStop']


class GateStop(Exception):
    """Raised after the frame at which a gated walk ends (the frame is already recorded)."""


class Gate:
    """The gate of one job: the feature model and density model loaded once, a fresh record per walk.

    :param config: ``feature_model`` (MACE model file), ``density_model`` (npz of a ``DensityModel``),
        ``unknown_fraction`` (stop at this fraction of unknown atoms in a frame, > 0) and ``every`` (check every
        n-th dumped frame, default 1).
    """

    Stop = GateStop

    def __init__(self, config: dict, device: str = 'cpu', dtype: str | None = None):
        self.threshold = float(config['unknown_fraction'])
        self.every = max(1, int(config.get('every', 1)))
        self.extractor = features.FeatureExtractor(config['feature_model'], device=device, dtype=dtype)
        self.density = gmm.DensityModel.load(config['density_model'])
        self.start_walk()

    def start_walk(self) -> None:
        """Forget the previous walk's checks."""
        self.dumps, self.checks, self.seconds = 0, 0, 0.0
        self.first_unknown_step: int | None = None
        self.stopped: dict | None = None

    def check(self, atoms, step: int) -> None:
        """Score the dumped frame ``atoms`` at ``step``; raise :class:`GateStop` when the walk should end here."""
        self.dumps += 1
        if (self.dumps - 1) % self.every:
            return
        start = time.perf_counter()
        unknown = self.density.is_unknown(self.extractor.features(atoms), atoms.get_chemical_symbols())
        self.seconds += time.perf_counter() - start
        self.checks += 1
        count = int(np.count_nonzero(unknown))
        if count and self.first_unknown_step is None:
            self.first_unknown_step = int(step)
        fraction = count / max(len(atoms), 1)
        if count and fraction >= self.threshold:
            self.stopped = {'step': int(step), 'unknown_atoms': count, 'unknown_fraction': fraction}
            raise GateStop(f'step {step}: {count} unknown atoms ({fraction:.4f} >= {self.threshold:g})')

    def record(self) -> dict:
        """Return what a walk's result says about its gate: threshold, checks, first unknown atom, where it stopped."""
        counters = ('every', 'checks', 'seconds', 'first_unknown_step', 'stopped')
        return {'unknown_fraction': self.threshold, **{name: getattr(self, name) for name in counters}}
