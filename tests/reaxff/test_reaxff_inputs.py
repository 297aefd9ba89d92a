"""ReaxFF builders and script generation from the MD protocol language (no engine run)."""

import warnings

import numpy as np
import pytest
from aiida import orm

from aiida_mofal.md.protocol import load_md_settings
from aiida_mofal.md.units import gpa_to_atm
from aiida_mofal.protocols import ProtocolError
from aiida_mofal.workchains.reaxff import (
    QEQ_ARGUMENTS,
    _read_dump,
    _read_thermo,
    control_keywords,
    get_control_file,
    get_force_field,
    get_reaxff_builder,
    reaxff_script,
    reaxff_species,
)
from tests.conftest import ROOT
from tests.structure_files import read_structure

FORCEFIELDS = ROOT / 'tests' / 'data_files' / 'forcefields'
FFIELD = FORCEFIELDS / 'ffield_ZnN_2016.reax'
CONTROL = FORCEFIELDS / 'lmp_control.reax'


@pytest.fixture
def zif4_structure(aiida_profile):
    return orm.StructureData(ase=read_structure('ZIF-4_Lewis2009.cif')).store()


def test_species_of_the_zif_force_field():
    assert reaxff_species(FFIELD.read_text()) == ['C', 'H', 'O', 'N', 'S', 'Mg', 'P', 'Na', 'Cu', 'Cl', 'Zn']


def test_control_file_to_pair_style_keywords():
    options, lost = control_keywords(CONTROL.read_text())
    assert options == ['NULL', 'tabulate', '10000']
    # the only setting LAMMPS cannot take as a keyword and that differs from its default
    assert lost == {'hbond_cutoff': (6.0, 7.5)}
    assert control_keywords(None) == (['NULL'], {})
    with pytest.raises(ValueError, match='unknown ReaxFF control setting'):
        control_keywords('nbrhood_cutof 5.0\n')


def test_script_of_a_melt_quench_schedule():
    settings = load_md_settings('melt_quench')
    script = reaxff_script(settings, ['C', 'H', 'N', 'Zn'])
    lines = script.splitlines()
    assert 'units real' in lines and 'atom_style charge' in lines
    assert 'pair_style reaxff control.reax' in lines
    assert 'pair_coeff * * ffield.reax C H N Zn' in lines
    assert f'fix qeq all qeq/reaxff {" ".join(str(v) for v in QEQ_ARGUMENTS)}' in lines
    runs = [int(line.split()[1]) for line in lines if line.startswith('run ')]
    assert runs == [stage['steps'] for stage in settings['schedule']]
    # the heating ramp and the plateau, Nose-Hoover 100 fs
    assert 'fix stage1_0 all nvt temp 300.0 1500.0 100.0' in lines
    assert 'fix stage2_0 all nvt temp 1500.0 1500.0 100.0' in lines
    assert lines.count('timestep 0.5') == len(settings['schedule'])
    assert 'velocity all create 300.0 1 dist gaussian mom yes rot yes' in lines
    assert any(
        line.startswith('dump frames all custom 1000 trajectory.dump id type element x y z fx fy fz q')
        for line in lines
    )


def test_script_npt_langevin_converts_gpa_to_atm():
    settings = load_md_settings(
        'explore',
        {
            'thermostat': 'langevin',
            'barostat': 'triclinic',
            'schedule': [{'steps': 10, 'temperature': [300.0, 400.0], 'pressure': [0.0, 1.0]}],
        },
    )
    script = reaxff_script(settings, ['Zn', 'N', 'C', 'H'], minimize={'max_iterations': 50})
    nph = next(line for line in script.splitlines() if ' nph ' in line).split()
    assert nph[:5] == ['fix', 'stage0_0', 'all', 'nph', 'tri']
    assert float(nph[5]) == 0.0 and float(nph[6]) == pytest.approx(gpa_to_atm(1.0)) == pytest.approx(9869.2327, 1e-6)
    langevin = next(line for line in script.splitlines() if ' langevin ' in line).split()
    assert [float(x) for x in langevin[4:7]] == [300.0, 400.0, 100.0]
    # the minimisation comes before the velocities and the dump, and MD restarts at step 0
    text = script
    assert text.index('minimize ') < text.index('reset_timestep 0') < text.index('velocity all create')
    assert text.index('velocity all create') < text.index('dump frames')


def test_builder_routes(zif4_structure, mofal_codes):
    force_field = get_force_field(FFIELD)
    control = get_control_file(CONTROL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        base = get_reaxff_builder(
            mofal_codes['lammps'], zif4_structure, 'nvt', force_field=force_field, control=control
        )
    assert any('hbond_cutoff' in str(w.message) for w in caught)
    assert base.process_class.__name__ == 'LammpsBaseCalculation'
    parameters = base.parameters.get_dict()
    assert parameters['md']['integration'] == {'style': 'nvt', 'constraints': {'temp': [300.0, 300.0, 100.0]}}
    assert parameters['potential']['potential_style_options'] == ['NULL', 'tabulate', '10000']
    assert parameters['fix']['qeq/reaxff'][0]['type'] == QEQ_ARGUMENTS
    assert parameters['control'] == {'units': 'real', 'timestep': 0.5, 'newton': 'on'}
    assert 'hbond_cutoff' in base.metadata.description

    npt = get_reaxff_builder(
        mofal_codes['lammps'],
        zif4_structure,
        'explore',
        {'schedule': [{'steps': 100, 'temperature': 300.0, 'pressure': 1.5}]},
        force_field=force_field,
    )
    constraints = npt.parameters.get_dict()['md']['integration']['constraints']
    assert constraints['iso'][0] == pytest.approx(gpa_to_atm(1.5)) and constraints['iso'][2] == 1000.0

    raw = get_reaxff_builder(
        mofal_codes['lammps'], zif4_structure, 'melt_quench', force_field=force_field, control=control
    )
    assert raw.process_class.__name__ == 'LammpsRawCalculation'
    assert set(raw.files) == {'structure', 'force_field', 'control'}
    assert raw.filenames.get_dict()['control'] == 'control.reax'
    script = raw.script.get_content()
    assert script.count('\nrun ') == 5
    # provenance: the script and the data file come from the structure through a calcfunction
    creator = raw.script.creator
    assert creator is not None and creator.inputs.structure.uuid == zif4_structure.uuid

    with pytest.raises(ValueError, match='cannot express several schedule stages'):
        get_reaxff_builder(mofal_codes['lammps'], zif4_structure, 'melt_quench', force_field=force_field, route='base')
    with pytest.raises(ProtocolError):
        get_reaxff_builder(mofal_codes['lammps'], zif4_structure, 'nvt', {'temprature': 300.0}, force_field=force_field)


def test_raw_route_without_control_file(zif4_structure, mofal_codes):
    builder = get_reaxff_builder(
        mofal_codes['lammps'], zif4_structure, 'nvt', force_field=get_force_field(FFIELD), route='raw'
    )
    assert 'pair_style reaxff NULL' in builder.script.get_content().splitlines()
    assert set(builder.files) == {'structure', 'force_field'}
    assert 'asked for' in builder.metadata.description
    data = builder.files['structure'].get_content()
    assert '272 atoms' in data and '4 atom types' in data


def test_builder_refuses_molecules(aiida_profile, mofal_codes):
    from ase.build import molecule

    methane = orm.StructureData(ase=molecule('CH4', vacuum=5.0, pbc=False)).store()
    with pytest.raises(ValueError, match='periodic cells'):
        get_reaxff_builder(mofal_codes['lammps'], methane, 'nvt', force_field=get_force_field(FFIELD))


def test_builder_refuses_elements_without_parameters(aiida_profile, mofal_codes):
    uio = orm.StructureData(ase=read_structure('UiO-66-Zr_Trousselet2016.cif')).store()
    with pytest.raises(ValueError, match=r"no parameters for \['Zr'\]"):
        get_reaxff_builder(mofal_codes['lammps'], uio, 'nvt', force_field=get_force_field(FFIELD))


def test_dump_and_thermo_readers():
    dump = (
        'ITEM: TIMESTEP\n5\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS xy xz yz pp pp pp\n'
        '0 10 0.5\n0 11 0\n0 12 0\nITEM: ATOMS id type element x y z q\n'
        '2 1 H 1 2 3 0.1\n1 1 H 4 5 6 -0.1\n'
        'ITEM: TIMESTEP\n10\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS xy xz yz pp pp pp\n'
        '0 10 0\n0 11 0\n'  # cut short: a killed run
    )
    frames = _read_dump(dump)
    assert len(frames) == 1 and frames[0]['step'] == 5
    assert np.allclose(frames[0]['cell'], [[9.5, 0, 0], [0.5, 11, 0], [0, 0, 12]])
    assert list(frames[0]['fields']['id']) == ['1', '2'] and list(frames[0]['fields']['x']) == ['4', '1']
    log = (
        '   Step          Time           Temp          PotEng         KinEng         TotEng       Econserve'
        '        Press          Volume          Pxx            Pyy            Pzz            Pxy            Pxz'
        '            Pyz\n'
        '0 0 300 -10 1 -9 -9 5 100 1 2 3 4 5 6\n'
        'WARNING: something harmless\n'
        '10 5 310 -10.5 1.1 -9.4 -9.0 6 100 1 2 3 4 5 6\n'
        'Loop time of 1 on 1 procs\n'
        '   Step          Time           Temp          PotEng         KinEng         TotEng       Econserve'
        '        Press          Volume          Pxx            Pyy            Pzz            Pxy            Pxz'
        '            Pyz\n'
        '10 5 999 -10.5 1.1 -9.4 -9.0 6 100 1 2 3 4 5 6\n'
        '20 10 320 -11 1.2 -9.8 -9.1 7 101 1 2 3 4 5 6\n'
    )
    thermo = _read_thermo(log)
    assert thermo['step'].tolist() == [0, 10, 20]
    assert thermo['temp'].tolist() == [300, 310, 320]  # the repeated step keeps its first value
    assert thermo['vol'].tolist() == [100, 100, 101]
