"""CP2K input generation and output parsing (pure Python), and one real CP2K run of a generated input."""

import copy
import subprocess

import numpy as np
import pytest
from aiida_cp2k.utils import Cp2kInput
from ase import units
from ase.build import molecule

from aiida_mofal.cp2k.inputs import build_cp2k_parameters, cluster_box, isolated_atom, level_of_theory
from aiida_mofal.cp2k.outputs import FORCE_HARTREE_BOHR_TO_EV_A, GPA_TO_EV_A3, HARTREE_TO_EV, parse_cp2k_output
from aiida_mofal.environment import find_cp2k, find_mpirun
from aiida_mofal.protocols import ProtocolError, load_protocol
from aiida_mofal.workchains.label import label_settings


def test_unit_conversions():
    assert HARTREE_TO_EV == pytest.approx(27.211386, rel=1e-6)
    assert FORCE_HARTREE_BOHR_TO_EV_A == pytest.approx(27.211386 / 0.52917721, rel=1e-6)
    assert GPA_TO_EV_A3 * 160.21766 == pytest.approx(1.0, rel=1e-6)  # 1 eV/Å³ = 160.2 GPa


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


@pytest.mark.engine
def test_parse_a_real_cp2k_output(tmp_path):
    """Run CP2K on a generated input (xTB, periodic) and check the parsed units against CP2K's own printout."""
    atoms = molecule('CH4')
    atoms.cell, atoms.pbc = [[5.0, 0.0, 0.0], [0.4, 5.2, 0.0], [0.0, 0.3, 5.4]], True
    atoms.positions += 2.5
    atoms.info['config_type'] = 'periodic'
    parameters = build_cp2k_parameters(atoms, label_settings('xtb'))
    subsys = parameters['FORCE_EVAL']['SUBSYS']
    subsys['CELL'].update({k: ' '.join(map(str, v)) for k, v in zip('ABC', atoms.cell)})
    text = Cp2kInput(parameters).render()
    coords = '\n'.join(f'{a.symbol} {a.position[0]} {a.position[1]} {a.position[2]}' for a in atoms)
    text = text.replace('&SUBSYS', f'&SUBSYS\n&COORD\n{coords}\n&END COORD', 1)
    (tmp_path / 'aiida.inp').write_text(text)
    mpirun = find_mpirun(find_cp2k())
    command = [str(mpirun), '--allow-run-as-root', '-np', '1', str(find_cp2k()), '-i', 'aiida.inp', '-o', 'aiida.out']
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    out = (tmp_path / 'aiida.out').read_text()
    result = parse_cp2k_output(out)
    assert result.complete and result.scf_steps > 1 and result.version.startswith('CP2K version')
    assert result.forces_ev_a.shape == (5, 3)
    assert result.energy_ev == pytest.approx(result.energy_hartree * units.Hartree)
    assert np.allclose(result.forces_ev_a.sum(axis=0), 0.0, atol=1e-4)  # Newton's third law survives the parse
    assert result.stress_kind == 'analytical' and np.allclose(result.stress_ev_a3, result.stress_ev_a3.T)
    trace_gpa = float(out.split('STRESS| 1/3 Trace')[1].split()[0])
    assert -np.trace(result.stress_ev_a3) / 3 / units.GPa == pytest.approx(trace_gpa, rel=1e-6)  # P = -tr(σ)/3


def test_unconverged_and_walltime_outputs_are_not_complete():
    base = ' ENERGY| Total FORCE_EVAL ( QS ) energy [a.u.]:   -1.0\n  **** **** ******  **  PROGRAM ENDED AT  x\n'
    assert not parse_cp2k_output(base).complete  # no converged SCF line
    converged = '  *** SCF run converged in     7 steps ***\n' + base
    assert parse_cp2k_output(converged).complete
    walltime = ' *** SCF run terminated - exceeded requested execution time:  3.0 seconds.\n' + converged
    assert parse_cp2k_output(walltime).walltime_exceeded and not parse_cp2k_output(walltime).complete
    warning = ' *** WARNING in qs_scf.F:601 :: SCF run NOT converged ***\n' + base
    assert parse_cp2k_output(warning).scf_not_converged and not parse_cp2k_output(warning).complete
