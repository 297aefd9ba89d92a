"""The melt-quench protocol as MD stages: the paper's numbers, the hot timestep, the fallback, refusals of bad input."""

import pytest

from aiida_mofal.md import schedule
from aiida_mofal.md.melt_quench import (
    STAGES,
    check_metal_ligand_pairs,
    fallback_parameters,
    load_melt_quench_parameters,
    stage_settings,
    supercell_size,
    total_steps,
)
from aiida_mofal.protocols import ProtocolError
from tests.structure_files import read_structure


def test_the_papers_schedule():
    """SCIENCE.md §7: 20 K/ps to 1500 K, 50 ps plateau, 20 K/ps back, 100 ps at 300 K; 0.5 fs; NVT, NH 100 fs."""
    parameters = load_melt_quench_parameters('melt_quench')
    stages = stage_settings(parameters)
    assert list(stages) == list(STAGES)
    for settings in stages.values():
        assert settings['ensemble'] == 'nvt' and settings['thermostat'] == 'nose-hoover'
        assert settings['temperature_damping'] == 100.0 and settings['fail_on_broken_bonds'] is False
    heat, plateau, quench, measure = (stages[name] for name in ('heat', 'plateau', 'quench', 'measure'))
    assert heat['schedule'] == [{'steps': 120_000, 'temperature': [300.0, 1500.0], 'pressure': None, 'timestep': 0.5}]
    assert (1500.0 - 300.0) / (schedule.total_time(heat) / 1000.0) == pytest.approx(20.0)  # K/ps
    assert schedule.total_time(plateau) == pytest.approx(50_000.0) and plateau['schedule'][0]['timestep'] == 0.5
    assert quench['schedule'][0]['temperature'] == [1500.0, 300.0]
    assert schedule.total_time(measure) == pytest.approx(100_000.0) and measure['dump_every'] == 1000
    assert total_steps(parameters) == sum(schedule.total_steps(s) for s in stages.values()) == 580_000


def test_parts_above_1500_K_run_at_a_quarter_femtosecond():
    stages = stage_settings(load_melt_quench_parameters('melt_quench', {'max_temperature': 1900.0}))
    heat = stages['heat']['schedule']
    assert [(s['temperature'], s['timestep']) for s in heat] == [([300.0, 1500.0], 0.5), ([1500.0, 1900.0], 0.25)]
    assert heat[1]['steps'] == round(400 / 20 * 1000 / 0.25)  # 20 ps of 0.25 fs
    assert stages['plateau']['schedule'][0]['timestep'] == 0.25
    assert [s['timestep'] for s in stages['quench']['schedule']] == [0.25, 0.5]


def test_smoke_has_the_same_stages_in_at_most_2000_steps():
    parameters = load_melt_quench_parameters('smoke')
    stages = stage_settings(parameters, seed=7)
    assert list(stages) == list(STAGES) and total_steps(parameters) <= 2000
    assert {settings['seed'] for settings in stages.values()} == {7}
    assert max(t for s in stages['plateau']['schedule'] for t in s['temperature']) == 1500.0


def test_fallback_is_the_papers_allegro_run():
    fallback = fallback_parameters(load_melt_quench_parameters('melt_quench'))
    assert fallback['max_temperature'] == 1400.0 and fallback['plateau'] == 100.0 and fallback['fallback'] is None
    assert fallback_parameters(fallback) is None
    assert fallback_parameters(load_melt_quench_parameters('melt_quench', {'fallback': None})) is None
    custom = load_melt_quench_parameters('melt_quench', {'fallback': {'max_temperature': 1300.0, 'rate': 10.0}})
    assert fallback_parameters(custom)['rate'] == 10.0


@pytest.mark.parametrize(
    ('overrides', 'match'),
    [
        ({'max_temperature': 15000.0}, 'wrong units'),
        ({'max_temperature': 250.0}, 'must be above low_temperature'),
        ({'rate': 0.02}, 'rate is in K/ps'),  # K/fs typed as K/ps: 60,000 ps of heating
        ({'timestep': 500.0}, 'timesteps are in fs'),
        ({'plateau': -1.0}, "'plateau' must be >= 0 ps"),
        ({'fallback': {'max_temperature': 15000.0}}, 'wrong units'),
        ({'fallback': {'metal': 'Co'}}, 'only numeric parameters'),
        ({'max_temprature': 1400.0}, "Did you mean 'max_temperature'"),
    ],
)
def test_bad_parameters_are_refused_with_the_fix(overrides, match):
    with pytest.raises(ProtocolError, match=match):
        load_melt_quench_parameters('melt_quench', overrides)


def test_metal_ligand_pairs_are_required():
    zif = read_structure('ZnIm2-sod_Lewis2009.cif')
    assert check_metal_ligand_pairs(zif, 'Zn', 'N', 2.5) == 4 * zif.get_chemical_symbols().count('Zn')
    with pytest.raises(ValueError, match='has no Zn'):
        check_metal_ligand_pairs(read_structure('UiO-66-Zr_Trousselet2016.cif'), 'Zn', 'N', 2.5)
    with pytest.raises(ValueError, match='no Zn-N pair within 1.2 Å'):
        check_metal_ligand_pairs(read_structure('ZnIm2-sod_Lewis2009.cif'), 'Zn', 'N', 1.2)
    assert supercell_size((2, 2, 2)) == [2, 2, 2]
    with pytest.raises(ValueError, match='three positive integers'):
        supercell_size([2, 0, 2])
