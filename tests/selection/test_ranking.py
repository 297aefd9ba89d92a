"""Ranking and capping the candidate clusters of a cycle: most uncertain seed first, stable, capped."""

import numpy as np
import pytest
from ase import Atoms

from aiida_mofal.selection.ranking import STORED_INFINITY, rank_clusters, seed_uncertainty


def _cluster(name: str, uncertainty: float) -> Atoms:
    atoms = Atoms('H')
    atoms.info.update(name=name, uncertainty=uncertainty)
    return atoms


def test_most_uncertain_first_and_capped():
    candidates = [_cluster('a', 1.0), _cluster('b', 5.0), _cluster('c', 3.0), _cluster('d', 4.0)]
    assert [c.info['name'] for c in rank_clusters(candidates, 2)] == ['b', 'd']
    assert [c.info['name'] for c in rank_clusters(candidates, 10)] == ['b', 'd', 'c', 'a']


def test_ties_keep_the_candidate_order():
    candidates = [_cluster('first', 2.0), _cluster('second', 2.0), _cluster('third', 7.0)]
    assert [c.info['name'] for c in rank_clusters(candidates, 3)] == ['third', 'first', 'second']


def test_an_unseen_element_ranks_first_and_is_stored_finite():
    cluster = Atoms('H')
    cluster.info['seed_atom'] = 2
    uncertainty = np.array([0.5, 1.0, np.inf])
    assert seed_uncertainty(cluster, uncertainty) == STORED_INFINITY
    cluster.info['seed_atom'] = 1
    assert seed_uncertainty(cluster, uncertainty) == 1.0
    ranked = rank_clusters([_cluster('known', 9.0), _cluster('unseen', STORED_INFINITY)], 1)
    assert ranked[0].info['name'] == 'unseen'


def test_nan_and_a_zero_cap_are_refused():
    cluster = Atoms('H')
    cluster.info['seed_atom'] = 0
    with pytest.raises(ValueError, match='NaN'):
        seed_uncertainty(cluster, np.array([np.nan]))
    with pytest.raises(ValueError, match='at least 1'):
        rank_clusters([], 0)
