"""The `mofal.dataset` data plugin: validation, exact round trip, MACE compatibility, merge provenance."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from aiida_mofal.data import DatasetData
from aiida_mofal.mlp.configurations import (
    EV_PER_A3_TO_GPA,
    ConfigurationError,
    read_extxyz,
    stress_to_gpa,
    write_extxyz,
)


def periodic_frame(rng) -> Atoms:
    atoms = Atoms('H2O', positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=np.eye(3) * 5, pbc=True)
    atoms.positions += rng.normal(scale=0.05, size=(3, 3))
    atoms.info['REF_energy'] = float(rng.normal(-470.0, 1.0))
    atoms.arrays['REF_forces'] = rng.normal(size=(3, 3))
    atoms.info['REF_stress'] = rng.normal(scale=1e-3, size=6)
    return atoms


def cluster_frame(rng, charge=0) -> Atoms:
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    atoms.positions += rng.normal(scale=0.05, size=(3, 3))
    atoms.info.update({'REF_energy': float(rng.normal(-470.0, 1.0)), 'charge': charge, 'multiplicity': 1})
    atoms.arrays['REF_forces'] = rng.normal(size=(3, 3))
    atoms.arrays['role'] = np.array(['core', 'cap', 'mantle'])
    atoms.arrays['parent_index'] = np.array([12, -1, 7])
    return atoms


def test_round_trip_is_exact(aiida_profile):
    rng = np.random.default_rng(1)
    frames = [periodic_frame(rng), cluster_frame(rng), periodic_frame(rng)]
    node = DatasetData(frames, level_of_theory={'method': 'xtb'}).store()
    reloaded = DatasetData.collection.get(pk=node.pk)
    reloaded._frames = None  # force a read from the repository
    back = reloaded.get_atoms()
    assert node.count == 3
    assert node.labels == ['energy', 'forces', 'stress']
    assert node.config_types == {'cluster': 1, 'periodic': 2}
    assert node.elements == ['H', 'O']
    for original, copy in zip(frames, back):
        assert np.array_equal(original.positions, copy.positions)
        assert np.array_equal(original.cell.array, copy.cell.array)
        assert np.array_equal(original.pbc, copy.pbc)
        assert original.info['REF_energy'] == copy.info['REF_energy']
        assert np.array_equal(original.arrays['REF_forces'], copy.arrays['REF_forces'])
    assert np.array_equal(frames[0].info['REF_stress'], back[0].info['REF_stress'])
    assert list(back[1].arrays['role']) == ['core', 'cap', 'mantle']
    assert back[1].arrays['role'].dtype.kind == 'U'  # strings, not objects: frames read back can be stored again
    assert DatasetData(back).count == 3
    assert list(back[1].arrays['parent_index']) == [12, -1, 7]
    assert back[1].info['config_type'] == 'cluster' and back[0].info['config_type'] == 'periodic'


def test_mace_reads_the_exported_file(aiida_profile, tmp_path):
    """The file goes to mace_run_train unchanged: MACE's own loader must see our energies, forces, stress."""
    from mace.data.utils import KeySpecification, load_from_xyz

    rng = np.random.default_rng(2)
    frames = [periodic_frame(rng), periodic_frame(rng)]
    path = DatasetData(frames).store().export(tmp_path / 'train.xyz')
    # MACE's own default keys, i.e. what mace_run_train uses when no --energy_key etc. is given
    _, configs = load_from_xyz(str(path), key_specification=KeySpecification.from_defaults())
    assert len(configs) == 2
    for frame, config in zip(frames, configs):
        assert config.properties['energy'] == pytest.approx(frame.info['REF_energy'])
        np.testing.assert_allclose(config.properties['forces'], frame.arrays['REF_forces'])
        voigt = np.asarray(config.properties['stress']).reshape(-1)
        np.testing.assert_allclose(voigt, frame.info['REF_stress'])


def test_stress_matrix_is_stored_as_ase_voigt_and_converted_to_gpa():
    matrix = np.array([[1.0, 0.4, 0.5], [0.4, 2.0, 0.6], [0.5, 0.6, 3.0]]) * 1e-3
    atoms = Atoms('H2', positions=[[0, 0, 0], [0.74, 0, 0]], cell=np.eye(3) * 6, pbc=True)
    atoms.info['REF_stress'] = matrix
    (back,) = read_extxyz(_normalised(atoms))
    np.testing.assert_array_equal(back.info['REF_stress'], [1e-3, 2e-3, 3e-3, 0.6e-3, 0.5e-3, 0.4e-3])
    # pressure of a compressed cell is positive: -tr(sigma)/3 with sigma = -1 eV/A^3 * identity
    assert -stress_to_gpa([-1, -1, -1, 0, 0, 0])[:3].mean() == pytest.approx(EV_PER_A3_TO_GPA)


def _normalised(atoms):
    from aiida_mofal.mlp.configurations import validate_configuration

    return write_extxyz([validate_configuration(atoms)])


@pytest.mark.parametrize(
    ('mutate', 'message'),
    [
        (lambda a: a.arrays.__setitem__('REF_forces', np.full((3, 3), np.nan)), 'NaN or inf'),
        (lambda a: a.info.__setitem__('REF_energy', float('inf')), 'NaN or inf'),
        (lambda a: a.arrays.__setitem__('REF_forces', np.zeros((2, 3))), 'expected (3, 3)'),
        (lambda a: a.info.__setitem__('multiplicity', 2), 'cannot have multiplicity 2'),
        (lambda a: a.info.__setitem__('config_type', 'bulk'), "config_type 'bulk'"),
        (lambda a: a.positions.__setitem__(1, a.positions[0] + 0.1), 'closer than 0.5'),
        (lambda a: a.info.__setitem__('REF_stress', np.zeros(6)), 'a cluster has no stress'),
    ],
)
def test_bad_configurations_are_refused_with_a_clear_message(aiida_profile, mutate, message):
    atoms = cluster_frame(np.random.default_rng(3))
    mutate(atoms)
    with pytest.raises(ConfigurationError, match=message.replace('(', r'\(').replace(')', r'\)')):
        DatasetData([atoms])


def test_periodic_structure_without_cell_is_refused():
    atoms = Atoms('H2', positions=[[0, 0, 0], [0.74, 0, 0]], pbc=True)
    with pytest.raises(ConfigurationError, match='without a cell'):
        DatasetData([atoms])


def test_partially_labelled_set_is_refused():
    rng = np.random.default_rng(4)
    frames = [cluster_frame(rng), cluster_frame(rng)]
    del frames[1].info['REF_energy']
    with pytest.raises(ConfigurationError, match='energy is given for some configurations but missing for 1'):
        DatasetData(frames)


def test_unlabelled_set_is_allowed_and_charge_is_kept():
    atoms = molecule('H2O')
    atoms.center(vacuum=3)
    atoms.info.update({'charge': 2, 'multiplicity': 1})
    node = DatasetData([atoms])
    assert node.labels == []
    assert node.get_atoms()[0].info['charge'] == 2


def test_merge_datasets_links_provenance_and_refuses_mixed_levels_of_theory(aiida_profile):
    from aiida_mofal.calculations.datasets import merge_datasets

    rng = np.random.default_rng(5)
    first = DatasetData([periodic_frame(rng)], level_of_theory={'method': 'xtb'}, isolated_atom_energies={'H': -10.0})
    second = DatasetData([cluster_frame(rng), cluster_frame(rng)], level_of_theory={'method': 'xtb'})
    merged, call = merge_datasets.run_get_node(a=first, b=second)
    assert merged.count == 3
    assert merged.isolated_atom_energies == {'H': -10.0}
    assert call.is_finished_ok
    assert {link.node.pk for link in merged.base.links.get_incoming().all()} == {call.pk}
    assert {link.node.pk for link in call.base.links.get_incoming().all() if link.link_label in ('a', 'b')} == {
        first.pk,
        second.pk,
    }
    other = DatasetData([cluster_frame(rng)], level_of_theory={'method': 'pbe'})
    with pytest.raises(ConfigurationError, match='only one level of theory'):
        merge_datasets(a=first, b=other)
