import numpy as np
import pytest
from ase.calculators.lj import LennardJones

from aiida_mofal.clusters.extract import extract_clusters
from aiida_mofal.clusters.forcematch import compare_mantle_depths, core_force_errors, core_force_rmse, force_match

from .conftest import read_structure


def _calc():
    # a short-ranged, smooth pair potential: cheap and exactly local, so a thick enough mantle reproduces
    # the bulk force on the core atoms
    return LennardJones(sigma=1.2, epsilon=0.01, rc=3.0, smooth=True)


def test_thicker_mantle_matches_bulk_forces_better():
    atoms = read_structure('ZnIm2-sod_Lewis2009.cif')
    n = int(np.flatnonzero(atoms.numbers == 7)[0])  # an imidazolate: without mantle it is imidazolium
    errors = compare_mantle_depths(atoms, [n], _calc(), depths=(0, 1))
    assert errors[0][0] > 0.1
    assert errors[1][0] < 0.01 * errors[0][0]


def test_per_atom_errors_are_zero_for_identical_forces():
    atoms = read_structure('UiO-66-Zr_Trousselet2016.cif')
    (cluster,) = extract_clusters(atoms, [0])
    bulk = np.random.default_rng(0).normal(size=(len(atoms), 3))
    same = np.zeros((len(cluster), 3))
    real = cluster.arrays['parent_index'] >= 0
    same[real] = bulk[cluster.arrays['parent_index'][real]]
    per_atom = core_force_errors(bulk, cluster, same)
    assert len(per_atom) == cluster.info['n_core'] and np.allclose(per_atom, 0)
    shifted = same + np.array([0.3, 0.0, 0.0])
    assert np.isclose(core_force_rmse(bulk, cluster, shifted), 0.3 / np.sqrt(3))


def test_force_match_runs_with_an_ase_calculator():
    atoms = read_structure('ZnIm2-sod_Lewis2009.cif')
    clusters = extract_clusters(atoms, [0, 30], merge_depth=0)
    rmse = force_match(atoms, clusters, _calc())
    assert len(rmse) == len(clusters) and all(np.isfinite(rmse))
    with pytest.raises(KeyError):
        core_force_errors(np.zeros((len(atoms), 3)), atoms, np.zeros((len(atoms), 3)))
