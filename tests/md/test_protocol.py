"""The MD protocol language: validation, schedule arithmetic, restarts, shipped protocols."""

import pytest

from aiida_mofal.md.protocol import (
    elapsed_time,
    load_md_settings,
    max_temperature,
    remaining_settings,
    stage_boundaries,
    targets_at,
    total_steps,
    total_time,
    validate_md_settings,
)
from aiida_mofal.protocols import ProtocolError, available_protocols

RAMP = {
    'ensemble': 'npt',
    'timestep': 0.5,
    'schedule': [
        {'steps': 100, 'temperature': 300.0, 'pressure': 0.0},
        {'steps': 200, 'temperature': [300.0, 1500.0], 'pressure': [0.0, 0.5], 'timestep': 0.25},
    ],
}


def test_validation_fills_defaults_and_normalises_stages():
    settings = validate_md_settings(RAMP)
    assert settings['thermostat'] == 'nose-hoover' and settings['barostat'] == 'isotropic'
    assert settings['thermo_every'] == settings['dump_every'] == 10
    assert settings['schedule'][0] == {'steps': 100, 'temperature': [300.0, 300.0], 'pressure': [0.0, 0.0],
                                       'timestep': 0.5}  # fmt: skip
    assert validate_md_settings(settings) == settings  # idempotent
    assert RAMP['schedule'][0]['temperature'] == 300.0  # input untouched


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'ensemble': 'npH'}, 'ensemble'),
        ({'thermostat': 'berendsen'}, 'thermostat'),
        ({'timestep': 0}, 'timestep'),
        ({'dump_every': 2.5}, 'dump_every'),
        ({'seed': True}, 'seed'),
        ({'temprature': 300}, 'unknown MD settings'),
        ({'schedule': []}, 'non-empty'),
        ({'schedule': [{'steps': 10, 'temperature': 300.0}]}, 'needs a pressure'),
        ({'schedule': [{'steps': 10, 'temperature': 0.0, 'pressure': 0.0}]}, '> 0 K'),
        ({'schedule': [{'steps': 10, 'temperature': [1, 2, 3], 'pressure': 0.0}]}, 'start, end'),
        ({'schedule': [{'steps': 10, 'temp': 300, 'pressure': 0.0}]}, 'unknown keys'),
        ({'schedule': [{'steps': 0, 'temperature': 300, 'pressure': 0.0}]}, 'steps'),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(change, message):
    with pytest.raises(ProtocolError, match=message):
        validate_md_settings({**RAMP, **change})


def test_nve_needs_a_starting_temperature():
    with pytest.raises(ProtocolError, match='initial_temperature'):
        validate_md_settings({'ensemble': 'nve', 'timestep': 1.0, 'schedule': [{'steps': 10}]})
    settings = validate_md_settings(
        {'ensemble': 'nve', 'timestep': 1.0, 'initial_temperature': 300, 'schedule': [{'steps': 10}]}
    )
    assert targets_at(settings, 5) == (None, None)


def test_schedule_functions_validate_first():
    """The protocol's schedule functions take raw settings: a hold given as a number is a [T, T] pair to them."""
    assert total_steps(RAMP) == 300 and stage_boundaries(RAMP) == [(0, 100), (100, 300)]
    assert targets_at(RAMP, 200) == (900.0, 0.25)
    assert elapsed_time(RAMP, 150) == pytest.approx(62.5) and total_time(RAMP) == pytest.approx(100.0)
    assert max_temperature(RAMP) == pytest.approx(4500.0)
    with pytest.raises(ProtocolError, match='timestep'):
        total_time({**RAMP, 'timestep': -1})


def test_remaining_settings_are_valid_settings():
    rest = remaining_settings({**RAMP, 'dump_every': 4, 'thermo_every': 2}, 200, timestep_factor=0.5)
    assert validate_md_settings(rest) == rest
    assert rest['schedule'][0]['timestep'] == 0.125 and rest['dump_every'] == 8
    with pytest.raises(ValueError):
        remaining_settings(RAMP, 300)


def test_every_shipped_protocol_validates():
    names = available_protocols('md')
    assert {'explore', 'melt_quench', 'nvt', 'nve'} <= set(names)
    for name in names:
        assert load_md_settings(name)['protocol'] == name
    melt = load_md_settings('melt_quench')
    # SCIENCE.md §7: 20 K/ps ramps at 0.5 fs, a 50 ps plateau at 1500 K, NVT, broken linkers fail the run
    heat = melt['schedule'][1]
    assert (heat['temperature'][1] - heat['temperature'][0]) / (heat['steps'] * heat['timestep'] / 1000) == 20.0
    assert melt['schedule'][2]['steps'] * 0.5 / 1000 == 50.0 and melt['fail_on_broken_bonds']
    explore = load_md_settings('explore')
    assert total_time(explore) == 500.0 and explore['ensemble'] == 'npt'
    with pytest.raises(ProtocolError, match='Did you mean'):
        load_md_settings('explore', {'time_step': 1.0})
