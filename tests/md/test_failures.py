"""What md_run.py does when a run cannot finish: walltime (then continue from the restart state), NaN from the model."""

import mace  # noqa: F401  (first: it lets e3nn load its constants)
import numpy as np
import pytest
import torch

from aiida_mofal.md.protocol import remaining_settings, validate_md_settings

from .helpers import run_script

pytestmark = pytest.mark.engine


def test_walltime_stop_and_continue_from_restart(tmp_path, cu_cell, cu_model_file):
    """A run far too long for a 15 s walltime stops itself cleanly; the rest continues from its restart state."""
    settings = validate_md_settings(
        {'ensemble': 'nvt', 'timestep': 2.0, 'schedule': [{'steps': 100000, 'temperature': [300.0, 500.0]}],
         'dump_every': 10, 'thermo_every': 5}
    )  # fmt: skip
    first = run_script(tmp_path / 'first', cu_cell, settings, 'ase', walltime_seconds=15)
    assert first['result']['status'] == 'walltime'
    done = first['result']['completed_steps']
    assert 0 < done < 100000 and first['restart']['step'] == done
    assert first['trajectory']['steps'][-1] <= done

    rest = remaining_settings(settings, done)
    rest['schedule'][0]['steps'] = 20  # only the start of the rest, to keep the test short
    second = run_script(tmp_path / 'second', cu_cell, rest, 'lammps-python', restart=tmp_path / 'first' / 'restart.npz')
    assert second['result']['status'] == 'finished'
    start = second['trajectory']
    restart = first['restart']
    fractional = (start['positions'][0] - restart['positions']) @ np.linalg.inv(restart['cell'])
    assert np.abs(fractional - np.round(fractional)).max() < 1e-9  # same atoms (LAMMPS wraps them)
    assert np.allclose(start['velocities'][0], restart['velocities'])
    assert second['thermo']['target_temperature'][0] == pytest.approx(300.0 + 200.0 * done / 100000)


def test_nan_from_the_model_is_reported_as_such(tmp_path, cu_cell, cu_model_file, monkeypatch):
    model = torch.load(cu_model_file, map_location='cpu', weights_only=False)
    with torch.no_grad():
        next(model.readouts.parameters()).fill_(float('nan'))
    broken = tmp_path / 'nan.model'
    torch.save(model, broken)
    import tests.md.helpers as helpers

    monkeypatch.setattr(helpers, 'MODEL', broken)
    settings = {'ensemble': 'nvt', 'timestep': 1.0, 'schedule': [{'steps': 10, 'temperature': 300.0}]}
    out = run_script(tmp_path / 'run', cu_cell, settings, 'ase')
    assert out['result']['status'] == 'nan'
    assert 'model returned a non-finite' in out['result']['message']
