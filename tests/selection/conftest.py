"""Frames for the CBAD tests: a hydrogen peroxide crystal whose one dihedral we set by hand, and ZIF-8."""

import numpy as np
import pytest
from ase import Atoms

from aiida_mofal.selection.topology import CbadTopology
from tests.structure_files import read_structure

__all__ = ['peroxide', 'perturbed']


def peroxide(dihedral: float = 110.0, oo: float = 1.45, oh: float = 0.97, angle: float = 100.0, box: float = 8.0):
    """H–O–O–H in a cubic box, with the H–O–O–H dihedral (degrees) set exactly."""
    theta = np.radians(angle)
    phi = np.radians(dihedral)
    o1, o2 = np.zeros(3), np.array([oo, 0.0, 0.0])
    h1 = o1 + oh * np.array([np.cos(theta), np.sin(theta), 0.0])
    # h2 rotated by phi about the O–O axis from the cis position
    h2 = o2 + oh * np.array([-np.cos(theta), np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi)])
    atoms = Atoms('HOOH', positions=[h1, o1, o2, h2], cell=[box] * 3, pbc=True)
    atoms.translate([box / 2 - oo / 2, box / 2, box / 2])
    return atoms


def perturbed(reference: Atoms, count: int, seed: int = 0, sigma: float = 0.05, strain: float = 0.005):
    """``count`` copies of ``reference`` with Gaussian displacements and a small random strain: positions, cells."""
    rng = np.random.default_rng(seed)
    cells = np.array([reference.cell.array @ (np.eye(3) + rng.normal(0, strain, (3, 3))) for _ in range(count)])
    fractional = reference.get_scaled_positions(wrap=False)
    positions = np.einsum('na,fab->fnb', fractional, cells) + rng.normal(0, sigma, (count, len(reference), 3))
    return positions, cells


@pytest.fixture(scope='session')
def zif8():
    return read_structure('ZIF-8_Coudert2017.cif')


@pytest.fixture(scope='session')
def zif8_topology(zif8):
    return CbadTopology.from_reference(zif8)
