import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from aiida_mofal.structures.bonds import bond_graph, is_metal

from .conftest import read_structure


def test_bond_shifts_reproduce_distances(structure):
    _, atoms = structure
    g = bond_graph(atoms)
    vec = atoms.positions[g.j] + g.shift @ atoms.cell.array - atoms.positions[g.i]
    assert np.allclose(np.linalg.norm(vec, axis=1), g.distance)
    # every bond appears from both ends
    rev = g.reverse_index()
    assert np.array_equal(g.i[rev], g.j) and np.array_equal(g.shift[rev], -g.shift)
    assert g.unique().sum() == g.n_bonds


def test_no_metal_metal_or_metal_hydrogen_bonds(structure):
    _, atoms = structure
    g = bond_graph(atoms)
    metal = is_metal(atoms.get_chemical_symbols())
    assert not np.any(metal[g.i] & metal[g.j])
    assert not np.any(metal[g.i] & (atoms.numbers[g.j] == 1))
    # every hydrogen has exactly one bond
    assert np.all(g.degree[atoms.numbers == 1] == 1)


@pytest.mark.parametrize(
    'name,metal,coordination',
    [
        ('UiO-66-Zr_Trousselet2016.cif', 'Zr', 8),
        ('UiO-66-Hf_Trousselet2016.cif', 'Hf', 8),
        ('MOF-5_Trousselet2016.cif', 'Zn', 4),
        ('ZIF-8_Coudert2017.cif', 'Zn', 4),
        ('ZIF-4_Lewis2009.cif', 'Zn', 4),
        ('ZIF-4_glass01_Gaillac2020.cif', 'Zn', 4),
    ],
)
def test_metal_ligand_bonds_recognised(name, metal, coordination):
    atoms = read_structure(name)
    g = bond_graph(atoms)
    sites = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == metal)
    assert np.all(g.degree[sites] == coordination)


def test_non_periodic_molecule():
    g = bond_graph(molecule('C6H6'))
    assert g.n_bonds == 12
    assert not g.shift.any()


def test_tolerance_matters():
    # a stretched H2: bonded only with a generous tolerance
    atoms = Atoms('H2', positions=[(0, 0, 0), (0, 0, 0.8)])
    assert bond_graph(atoms, tolerance=0.0).n_bonds == 0
    assert bond_graph(atoms, tolerance=0.5).n_bonds == 1
