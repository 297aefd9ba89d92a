"""Initial and exploratory configurations: rattled/strained copies of a target and clusters cut from them."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from aiida_mofal.clusters.extract import extract_clusters
from aiida_mofal.structures.bonds import is_metal

__all__ = ('initial_configurations', 'perturbed_copies', 'pick_test_frames')


def perturbed_copies(atoms: Atoms, count: int, rattle: float, strain: float, rng: np.random.Generator) -> list[Atoms]:
    """Return ``count`` randomly strained and rattled copies of periodic ``atoms``.

    The cell gets a random symmetric strain (|ε| ≤ ``strain``), the atoms Gaussian displacements of standard
    deviation ``rattle`` Å.
    """
    copies = []
    for _ in range(count):
        epsilon = rng.uniform(-strain, strain, size=(3, 3))
        epsilon = (epsilon + epsilon.T) / 2
        copy = atoms.copy()
        copy.set_cell(atoms.cell @ (np.eye(3) + epsilon).T, scale_atoms=True)
        copy.positions += rng.normal(scale=rattle, size=copy.positions.shape)
        copy.info.update(config_type='periodic', charge=0, multiplicity=1)
        copies.append(copy)
    return copies


def initial_configurations(
    atoms: Atoms,
    *,
    periodic_frames: int,
    clusters: int,
    test_frames: int,
    rattle: float,
    strain: float,
    seed: int,
    mantle_depth: int = 1,
    vacuum: float = 6.0,
) -> tuple[list[Atoms], list[Atoms]]:
    """Return (training, test) configurations for the first model of a campaign on ``atoms``.

    Training: ``periodic_frames`` perturbed cells and ``clusters`` clusters centred on randomly chosen metal
    atoms of further perturbed cells (the initial set of the cluster paper is periodic; clusters make the first
    model know the cluster boundary chemistry it will meet). Test: ``test_frames`` perturbed cells.
    """
    rng = np.random.default_rng(seed)
    training = perturbed_copies(atoms, periodic_frames, rattle, strain, rng)
    test = perturbed_copies(atoms, test_frames, rattle, strain, rng)
    metals = np.flatnonzero(is_metal(atoms.get_chemical_symbols()))
    seeds = metals if len(metals) else np.arange(len(atoms))
    for _ in range(clusters):
        (frame,) = perturbed_copies(atoms, 1, rattle, strain, rng)
        centre = int(rng.choice(seeds))
        (cluster,) = extract_clusters(frame, [centre], mantle_depth=mantle_depth, merge_depth=0, vacuum=vacuum)
        training.append(cluster)
    for frame in training + test:
        frame.info['campaign_origin'] = 'initial'
    return training, test


def pick_test_frames(num_frames: int, count: int) -> list[int]:
    """Return the indices of ``count`` test frames of a trajectory of ``num_frames`` frames.

    Frame 0 is the starting structure (the target itself), never a test frame. The frames are spread evenly over
    the second half of the walk (the first half equilibrates at the test temperature); when the second half holds
    fewer than ``count`` frames, over the whole walk after frame 0. Fewer frames than asked: all of them.
    """
    if num_frames < 2 or count < 1:
        return []
    first = max(1, num_frames // 2)
    if num_frames - first < count:
        first = 1
    available = num_frames - first
    if available <= count:
        return list(range(first, num_frames))
    return sorted({int(round(i)) for i in np.linspace(first, num_frames - 1, count)})
