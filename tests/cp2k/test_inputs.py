"""CP2K input generation from a labelling protocol and the structure (pure Python)."""

import copy

import numpy as np
import pytest
from ase.build import molecule

from aiida_mofal.cp2k.inputs import build_cp2k_parameters, cluster_box, isolated_atom, level_of_theory
from aiida_mofal.protocols import ProtocolError, load_protocol
from aiida_mofal.workchains.label import label_settings


def test_protocols_resolve_and_refuse_typos():
    xtb, precise = label_settings('xtb'), label_settings('precise')
    assert xtb['method'] == 'xtb' and precise['cutoff'] == 1000 and precise['xc'] == 'PBE'
    assert label_settings()['protocol'] == 'moderate' and label_settings()['cutoff'] == 600
    with pytest.raises(ProtocolError, match="unknown label protocol 'presice'. Did you mean 'precise'"):
        label_settings('presice')
    with pytest.raises(ProtocolError, match="unknown override 'scf.max_sfc'. Did you mean 'max_scf'"):
        label_settings('fast', {'scf': {'max_sfc': 10}})
    overrides = {'cp2k': {'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 3}}}}, 'basis_set': {'Cu': 'DZVP-MOLOPT-SR-GTH'}}
    before = copy.deepcopy(overrides)
    settings = label_settings('fast', overrides)
    assert overrides == before  # never mutated
    assert settings['basis_set']['Cu'] == 'DZVP-MOLOPT-SR-GTH' and settings['basis_set']['Zr'].startswith('DZVP')
    assert load_protocol('label', 'fast')['cutoff'] == 400


def test_cluster_box_follows_the_cluster_and_the_poisson_solver():
    settings = label_settings('moderate')
    small, large = molecule('H2O'), molecule('C60')
    for atoms in (small, large):
        extent = np.ptp(atoms.positions, axis=0)
        box = cluster_box(atoms, settings)
        assert np.all(box >= extent + 2 * settings['cluster']['vacuum'] - 1e-3)
        assert np.all(box >= 2 * (extent + 4.0) - 1e-3)  # Martyna-Tuckerman: twice the density extent
    assert cluster_box(large, settings).min() > cluster_box(small, settings).max()
    xtb = cluster_box(large, label_settings('xtb'))
    assert np.allclose(xtb, np.ptp(large.positions, axis=0) + 12.0, atol=1e-3)


def test_parameters_for_cells_clusters_and_open_shells():
    settings = label_settings('moderate')
    water = molecule('H2O')
    water.info.update(config_type='cluster', charge=1, multiplicity=2)
    p = build_cp2k_parameters(water, settings, walltime_seconds=100)
    dft = p['FORCE_EVAL']['DFT']
    assert dft['CHARGE'] == 1 and dft['MULTIPLICITY'] == 2 and dft['UKS'] is True
    assert dft['POISSON'] == {'PERIODIC': 'NONE', 'POISSON_SOLVER': 'MT'}
    assert p['FORCE_EVAL']['SUBSYS']['CELL']['PERIODIC'] == 'NONE' and 'STRESS_TENSOR' not in p['FORCE_EVAL']
    assert dft['XC']['VDW_POTENTIAL']['PAIR_POTENTIAL']['TYPE'] == 'DFTD3(BJ)' and dft['MGRID']['CUTOFF'] == 600
    assert p['GLOBAL']['WALLTIME'] == 100
    cell = molecule('H2O')
    cell.cell, cell.pbc = [6.0, 6.0, 6.0], True
    cell.info.update(config_type='periodic')
    q = build_cp2k_parameters(cell, settings)
    assert q['FORCE_EVAL']['STRESS_TENSOR'] == 'ANALYTICAL' and q['FORCE_EVAL']['PRINT']['STRESS_TENSOR']
    assert 'POISSON' not in q['FORCE_EVAL']['DFT'] and 'UKS' not in q['FORCE_EVAL']['DFT']
    assert (
        level_of_theory(settings)['cutoff_ry'] == 600 and level_of_theory(label_settings('xtb'))['method'] == 'GFN1-xTB'
    )
    oxygen = isolated_atom('O', settings)
    assert oxygen.info['multiplicity'] == 3 and isolated_atom('Zn', settings).info['multiplicity'] == 1
