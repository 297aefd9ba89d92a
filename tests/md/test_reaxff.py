"""ReaxFF pure parts (aiida_mofal.md.reaxff): force-field species, control file, parameters, LAMMPS commands."""

import pytest

from aiida_mofal.md import reaxff
from tests.conftest import ROOT

FORCEFIELDS = ROOT / 'tests' / 'data_files' / 'forcefields'


def test_species_of_the_zif_force_field():
    text = (FORCEFIELDS / 'ffield_ZnN_2016.reax').read_text()
    assert reaxff.force_field_species(text) == ['C', 'H', 'O', 'N', 'S', 'Mg', 'P', 'Na', 'Cu', 'Cl', 'Zn']
    with pytest.raises(ValueError, match='ffield'):
        reaxff.force_field_species('not a force field\n')


def test_control_file_is_read_and_unknown_settings_refused():
    values = reaxff.parse_control((FORCEFIELDS / 'lmp_control.reax').read_text())
    assert values['hbond_cutoff'] == 6.0 and values['tabulate_long_range'] == 10000.0
    with pytest.raises(ValueError, match="unknown ReaxFF control setting 'nbrhood_cutof'"):
        reaxff.parse_control('nbrhood_cutof 5.0\n')
    with pytest.raises(ValueError, match='keyword value'):
        reaxff.parse_control('hbond_cutoff\n')


def test_parameters_fill_defaults_and_refuse_typos():
    parameters = reaxff.validate_reaxff_parameters(None)
    assert parameters == {'qeq': reaxff.QEQ_DEFAULTS, 'minimize': None}
    relax = reaxff.validate_reaxff_parameters({'minimize': True, 'qeq': {'maxiter': 50}})
    assert relax['minimize'] == reaxff.MINIMIZE_DEFAULTS and relax['qeq']['maxiter'] == 50
    assert reaxff.validate_reaxff_parameters({'minimize': {'max_iterations': 7}})['minimize']['max_iterations'] == 7
    for bad, message in (
        ({'qeq': {'max_iter': 5}}, 'unknown ReaxFF qeq parameters'),
        ({'qeq': {'maxiter': 0}}, 'integer >= 1'),
        ({'qeq': {'tolerance': -1}}, 'number >= 0'),
        ({'minimize': {'style': 'cg; shell rm'}}, 'LAMMPS keyword'),
        ({'minimize': 'yes'}, 'null, true or a mapping'),
        ({'qeq': {'cutoff_high': 0.0}}, 'cutoff_high'),
        ({'md': {}}, 'unknown ReaxFF parameters'),
    ):
        with pytest.raises(ValueError, match=message):
            reaxff.validate_reaxff_parameters(bad)


def test_interaction_and_minimisation_commands():
    parameters = reaxff.validate_reaxff_parameters({'minimize': True})
    commands = reaxff.interaction_commands(['C', 'H', 'N', 'Zn'], parameters['qeq'], control=True)
    assert commands[0] == 'pair_style reaxff control.reax'
    assert commands[1] == 'pair_coeff * * ffield.reax C H N Zn'
    assert commands[-1] == 'fix qeq all qeq/reaxff 1 0.0 10.0 1e-06 reaxff maxiter 200'
    assert reaxff.interaction_commands(['Zn'], parameters['qeq'], control=False)[0] == 'pair_style reaxff NULL'
    assert reaxff.minimize_command(parameters['minimize']) == ['min_style cg', 'minimize 1e-06 0.01 200 2000']
