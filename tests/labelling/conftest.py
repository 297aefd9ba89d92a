import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from tests.structure_files import read_structure


@pytest.fixture
def zn_im4_cluster() -> Atoms:
    """Zn(HIm)4 2+ cut by the project's own cluster extraction from the small Zn(Im)2 framework (37 atoms)."""
    from aiida_mofal.clusters.extract import extract_clusters

    framework = read_structure('ZnIm2-sod_Lewis2009.cif')
    zinc = int(np.flatnonzero(framework.numbers == 30)[0])
    (cluster,) = extract_clusters(framework, [zinc], mantle_depth=1, merge_depth=0)
    return cluster


@pytest.fixture
def water() -> Atoms:
    atoms = molecule('H2O')
    atoms.info.update(config_type='cluster', charge=0, multiplicity=1)
    return atoms


@pytest.fixture
def small_cell() -> Atoms:
    """Water and methane in a skewed 5 Å cell: a periodic structure that CP2K xTB labels in about a second."""
    atoms = Atoms(
        'OH2CH4',
        positions=[
            [0.0, 0.0, 0.0],
            [0.96, 0.0, 0.0],
            [-0.24, 0.93, 0.0],
            [2.5, 2.5, 2.5],
            [3.5, 2.5, 2.7],
            [2.5, 3.6, 2.5],
            [2.0, 2.0, 1.6],
            [2.0, 2.0, 3.4],
        ],
        cell=[[5.0, 0.0, 0.0], [0.3, 5.2, 0.0], [0.0, 0.2, 5.5]],
        pbc=True,
    )
    atoms.info.update(config_type='periodic', charge=0, multiplicity=1)
    return atoms
