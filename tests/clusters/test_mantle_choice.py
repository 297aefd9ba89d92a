"""The mantle design rule: the cheapest depth under the threshold, else the largest; stored by a calcfunction."""

import mace  # noqa: F401  (before e3nn: the tiny model fixture imports e3nn)
import numpy as np
from aiida import orm
from ase.calculators.lj import LennardJones

from aiida_mofal.clusters.forcematch import choose_depth, compare_mantle_depths, sample_seeds

from .conftest import read_structure


def test_the_cheapest_depth_under_the_threshold_else_the_largest():
    errors = {0: [0.30, 0.20], 1: [0.04, 0.06], 2: [0.01, 0.02]}
    assert choose_depth(errors, 0.10) == 1  # depth 1's worst sample (0.06) is under 0.10
    assert choose_depth(errors, 0.05) == 2  # depth 1's worst (0.06) is not
    assert choose_depth(errors, 1.00) == 0
    assert choose_depth(errors, 0.001) == 2  # none passes: the widest mantle
    assert choose_depth({0: [float('nan')], 1: [0.01]}, 0.05) == 1  # no finite error is no pass


def test_one_seed_per_kind_of_block_and_the_choice_follows_the_force_errors():
    atoms = read_structure('ZnIm2-sod_Lewis2009.cif')
    seeds = sample_seeds(atoms, 3)
    assert [atoms.get_chemical_symbols()[i] for i in seeds] == ['C', 'Zn']  # an imidazolate and a Zn centre
    assert sample_seeds(atoms, 1) == seeds[:1]
    calculator = LennardJones(sigma=1.2, epsilon=0.01, rc=3.0, smooth=True)  # exactly local, like test_forcematch
    errors = compare_mantle_depths(atoms, seeds, calculator, depths=(0, 1), merge_depth=0)
    worst0, worst1 = max(errors[0]), max(errors[1])
    assert worst1 < worst0
    assert choose_depth(errors, (worst0 + worst1) / 2) == 1 and choose_depth(errors, 2 * worst0) == 0


def test_the_calcfunction_stores_the_errors_and_the_choice_and_the_scan_cuts_with_it(
    aiida_profile, tiny_mace_model_file
):
    from aiida_mofal.calculations.campaign import scan_and_extract
    from aiida_mofal.calculations.density import fit_density_model
    from aiida_mofal.calculations.mantle import choose_mantle_depth
    from aiida_mofal.data import MaceModelData
    from tests.workchains.test_campaign import labelled, trajectory, water_box

    model = MaceModelData(tiny_mace_model_file, trusted=True).store()
    water = orm.StructureData(ase=water_box()).store()
    base = {'mantle_depths': [0, 1, 2], 'mantle_samples': 3, 'vacuum': 4.0, 'cycle': 1, 'names': {'target_0': 'w'}}
    strict, node = choose_mantle_depth.run_get_node(
        model, orm.Dict({**base, 'mantle_force_threshold': 1e-9}), target_0=water
    )
    stored = strict.get_dict()
    assert stored['depths'] == [0, 1, 2] and stored['threshold_ev_per_a'] == 1e-9 and stored['cycle'] == 1
    assert stored['chosen_depth'] == 2 and stored['passed'] is False  # nothing below 1e-9 eV/Å: the widest
    assert stored['samples'] == [{'target': 'w', 'seed_atoms': [0]}]  # one kind of block: a water molecule
    assert all(len(values) == 1 and values[0] > 0 for values in stored['errors_ev_per_a'].values())
    assert node.base.links.get_incoming().get_node_by_label('model').uuid == model.uuid
    assert strict.base.links.get_incoming().one().node.uuid == node.uuid  # a stored output of the calcfunction
    loose = choose_mantle_depth(model, orm.Dict({**base, 'mantle_force_threshold': 10.0}), target_0=water)
    assert loose['chosen_depth'] == 0 and loose['passed'] is True

    density = fit_density_model(model, labelled([water_box(seed=i) for i in range(4)]).store(), orm.Dict({}))
    walks = orm.Dict({'walk_0': {'target': 'water', 'walk': 0}})
    frames = trajectory([water_box(shift=0.9, seed=7), water_box(seed=8)])
    settings = orm.Dict({'mantle_depth': 'auto', 'merge_depth': 0, 'vacuum': 4.0, 'max_clusters': 3, 'cycle': 1})
    outputs, scan = scan_and_extract.run_get_node(model, density, settings, walks, mantle=loose, walk_0=frames)
    assert scan.base.links.get_incoming().get_node_by_label('mantle').uuid == loose.uuid
    assert outputs['scan']['clusters'] > 0 and np.all(outputs['clusters'].get_atoms()[0].arrays['parent_index'] >= 0)
