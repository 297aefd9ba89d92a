"""Relaxation settings: defaults filled, bad values refused with the key named."""

import pytest

from aiida_mofal.md.relax import RELAX_DEFAULTS, validate_relax_settings


def test_defaults_are_filled():
    assert validate_relax_settings(None) == {**RELAX_DEFAULTS, 'fmax': 0.01, 'pressure': 0.0}
    assert validate_relax_settings({'mode': 'shape', 'fmax': 1})['fmax'] == 1.0


@pytest.mark.parametrize(
    ('settings', 'message'),
    [
        ({'mode': 'cell'}, 'relaxation mode'),
        ({'optimizer': 'CG'}, 'optimizer'),
        ({'fmax': 0}, 'fmax'),
        ({'max_steps': 2.5}, 'max_steps'),
        ({'mode': 'shape', 'pressure': 1.0}, 'acts only in mode full'),
        ({'steps': 3}, 'unknown relaxation settings'),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        validate_relax_settings(settings)
