"""Schedule arithmetic (aiida_mofal.md.schedule): stage bounds, targets, checkpoints, the rest of a run."""

import pytest

from aiida_mofal.md import schedule
from aiida_mofal.md.protocol import validate_md_settings

RAMP = validate_md_settings(
    {'ensemble': 'npt', 'timestep': 0.5, 'dump_every': 40, 'thermo_every': 30,
     'schedule': [{'steps': 100, 'temperature': 300.0, 'pressure': 0.0},
                  {'steps': 200, 'temperature': [300.0, 1500.0], 'pressure': [0.0, 0.5], 'timestep': 0.25}]}
)  # fmt: skip


def test_bounds_targets_and_time():
    assert schedule.total_steps(RAMP) == 300
    assert schedule.stage_boundaries(RAMP) == [(0, 100), (100, 300)]
    assert [schedule.stage_at(RAMP, step) for step in (0, 100, 101, 300)] == [0, 0, 1, 1]
    assert schedule.targets_at(RAMP, 0) == (300.0, 0.0)
    assert schedule.targets_at(RAMP, 200) == (900.0, 0.25)
    assert schedule.targets_at(RAMP, 300) == (1500.0, 0.5)
    assert schedule.stage_targets(RAMP['schedule'][1], 100, 300, 150) == (600.0, 0.125)
    with pytest.raises(ValueError, match='outside'):
        schedule.targets_at(RAMP, 301)
    assert schedule.elapsed_time(RAMP, 150) == pytest.approx(100 * 0.5 + 50 * 0.25)
    assert schedule.total_time(RAMP) == pytest.approx(100.0)


def test_checkpoints_are_the_intervals_and_the_stage_ends():
    points = schedule.checkpoints(RAMP)
    assert points == sorted(set(range(0, 301, 30)) | set(range(0, 301, 40)) | {100, 300})
    assert points[0] == 0 and points[-1] == 300 and 100 in points


def test_initial_and_maximum_temperature():
    assert schedule.initial_temperature(RAMP) == 300.0
    assert schedule.initial_temperature({**RAMP, 'initial_temperature': 50.0}) == 50.0
    nve = validate_md_settings({'ensemble': 'nve', 'timestep': 1.0, 'initial_temperature': 10.0,
                                'schedule': [{'steps': 5}]})  # fmt: skip
    assert schedule.initial_temperature(nve) == 10.0
    assert schedule.max_temperature(RAMP) == pytest.approx(max(3 * 1500.0, 1500.0 + 2000.0))
    assert schedule.max_temperature({**RAMP, 'max_temperature': 800.0}) == 800.0
    assert schedule.max_temperature(nve) == pytest.approx(2010.0)  # T_max + 2000 K for a cold start


def test_remaining_settings_continue_the_ramp_with_a_halved_timestep():
    rest = schedule.remaining_settings(RAMP, 200, timestep_factor=0.5)
    assert rest['schedule'] == [{'steps': 200, 'temperature': [900.0, 1500.0], 'pressure': [0.25, 0.5],
                                 'timestep': 0.125}]  # fmt: skip
    assert rest['dump_every'] == 80 and rest['thermo_every'] == 60
    assert schedule.total_time(rest) == pytest.approx(schedule.total_time(RAMP) - schedule.elapsed_time(RAMP, 200))
    cut = schedule.remaining_settings(RAMP, 50)  # inside the hold: the hold's rest, then the whole ramp
    assert [stage['steps'] for stage in cut['schedule']] == [50, 200]
    assert schedule.remaining_settings(RAMP, 0)['schedule'] == RAMP['schedule']
    assert RAMP['schedule'][1]['temperature'] == [300.0, 1500.0]  # the input is not modified
    for bad in ((300, 1.0), (-1, 1.0), (10, 0.0), (10, 1.5)):
        with pytest.raises(ValueError):
            schedule.remaining_settings(RAMP, *bad)
