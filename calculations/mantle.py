"""The campaign's mantle design rule as a calcfunction: force matching with the cycle's model picks the depth.

``extract.mantle_depth: auto`` (docs/guide/campaign.md): before a cycle cuts its clusters, sample clusters of
every target are cut at each candidate depth and their core-atom forces compared with the bulk's, both from
the cycle's MACE model (``aiida_mofal.clusters.forcematch``). The stored Dict holds the errors, the threshold
and the chosen depth, and is an input of the scan calcfunction that cuts with it, so the graph shows why the
clusters of a cycle have the mantle they have.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

__all__ = ('choose_mantle_depth', 'initial_mantle_depth', 'mantle_depth_of')


def initial_mantle_depth(extract: dict) -> int:
    """Return the depth of the initial set's clusters: before any model exists, ``auto`` takes the largest candidate.

    Without a model there is nothing to force-match with, so the safe side (the widest mantle) is taken.
    """
    depth = extract['mantle_depth']
    return max(extract['mantle_depths']) if depth == 'auto' else int(depth)


def mantle_depth_of(settings: dict, mantle: orm.Dict | None) -> int:
    """Return the depth the scan cuts with: the settings' integer, or the ``chosen_depth`` of the choice node."""
    if settings['mantle_depth'] != 'auto':
        return int(settings['mantle_depth'])
    if mantle is None:
        raise ValueError("extract.mantle_depth is 'auto' but no mantle choice (choose_mantle_depth) was given.")
    return int(mantle['chosen_depth'])


@calcfunction
def choose_mantle_depth(model: orm.Data, settings: orm.Dict, **structures: orm.StructureData) -> orm.Dict:
    """Force-match sample clusters of every structure at each candidate depth with ``model``; choose the depth.

    ``settings``: ``mantle_depths``, ``mantle_force_threshold`` (eV/Å), ``mantle_samples`` (seeds per structure,
    one per kind of building block), ``vacuum``, and optionally ``cycle`` and ``names`` (keyword → target name).
    Cores are one block each (``merge_depth`` 0): the core atoms closest to the cut, the strictest test. The
    chosen depth is the smallest whose worst sample core RMSE is below the threshold, else the largest.
    """
    from aiida_mofal.clusters.forcematch import choose_depth, compare_mantle_depths, sample_seeds

    options = settings.get_dict()
    depths = sorted(int(depth) for depth in options['mantle_depths'])
    threshold = float(options['mantle_force_threshold'])
    names = options.get('names') or {}
    calculator = model.get_calculator()
    errors: dict[int, list[float]] = {depth: [] for depth in depths}
    samples = []
    for key, structure in sorted(structures.items()):
        atoms = structure.get_ase()
        seeds = sample_seeds(atoms, int(options.get('mantle_samples', 3)))
        found = compare_mantle_depths(
            atoms, seeds, calculator, depths=depths, merge_depth=0, vacuum=float(options.get('vacuum', 6.0))
        )
        for depth in depths:
            errors[depth] += found[depth]
        samples.append({'target': names.get(key, key), 'seed_atoms': seeds})
    chosen = choose_depth(errors, threshold)
    worst = {depth: (float(np.max(values)) if values else None) for depth, values in errors.items()}
    return orm.Dict(
        {
            'cycle': options.get('cycle'),
            'depths': depths,
            'threshold_ev_per_a': threshold,
            'errors_ev_per_a': {str(depth): [float(v) for v in values] for depth, values in errors.items()},
            'max_error_ev_per_a': {str(depth): value for depth, value in worst.items()},
            'chosen_depth': int(chosen),
            'passed': worst[chosen] is not None and worst[chosen] < threshold,
            'samples': samples,
        }
    )
