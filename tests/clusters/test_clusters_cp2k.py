"""Extracted clusters are chemically sound enough for DFTB-level electronic structure: real CP2K GFN1-xTB
converges on clusters cut from two different MOFs (ZIF-8 and MOF-5), through the labelling work chain."""

import numpy as np
import pytest
from aiida import engine

from aiida_mofal.clusters.extract import extract_clusters
from aiida_mofal.workchains.label import LabelWorkChain
from tests.structure_files import read_structure

pytestmark = pytest.mark.engine


def _first_metal_cluster(name: str, metal: int):
    framework = read_structure(name)
    seed = int(np.flatnonzero(framework.numbers == metal)[0])
    (cluster,) = extract_clusters(framework, [seed], mantle_depth=1, merge_depth=0)
    return cluster


def test_xtb_converges_on_clusters_of_two_mofs(mofal_codes):
    zif8 = _first_metal_cluster('ZIF-8_Coudert2017.cif', 30)  # Zn(HmIm)4 2+
    mof5 = _first_metal_cluster('MOF-5_Trousselet2016.cif', 30)  # Zn4O(O2C-C6H5)6, neutral
    assert zif8.info['charge'] == 2 and mof5.info['charge'] == 0
    builder = LabelWorkChain.get_builder_from_protocol(
        mofal_codes['cp2k'], [zif8, mof5], protocol='xtb', overrides={'isolated_atoms': False}
    )
    results, node = engine.run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    labelled = results['dataset'].get_atoms()
    assert [len(a) for a in labelled] == [len(zif8), len(mof5)]
    for atoms in labelled:
        forces = atoms.arrays['REF_forces']
        assert np.isfinite(forces).all()
        # caps sit at standard X-H lengths, not at optimised ones: forces stay chemical (< 10 eV/Å), not explosive
        assert np.abs(forces).max() < 10.0
        assert np.allclose(forces.sum(axis=0), 0.0, atol=1e-3)  # a free cluster feels no net force
    for base in node.called:
        if base.process_label == 'Cp2kBaseWorkChain':
            assert len(base.called) == 1  # converged on the first attempt, no handler needed
