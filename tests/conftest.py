"""Shared fixtures: a test profile with the built-in ZeroMQ broker, the localhost computer and codes."""

from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope='session')
def aiida_profile(aiida_config, aiida_profile_factory):
    """The embedded default of `mofal setup`: SQLite storage and the built-in ZeroMQ broker."""
    with aiida_profile_factory(aiida_config, broker_backend='core.zeromq') as profile:
        yield profile


@pytest.fixture(scope='session')
def mofal_codes(aiida_profile, tmp_path_factory):
    """The localhost computer and codes exactly as `mofal setup` makes them.

    Session-wide: no test may wipe the profile (``aiida_profile_clean``), or later tests would hold deleted codes.
    """
    from aiida_mofal.environment import ensure_codes, ensure_localhost

    computer = ensure_localhost(tmp_path_factory.mktemp('scratch'), mpiprocs=2)
    return ensure_codes(computer)


@pytest.fixture(scope='session')
def tiny_mace_model_file(tmp_path_factory) -> Path:
    """A real (untrained, randomly initialised) MACE model for H and O, saved as mace_run_train saves models."""
    import mace  # noqa: F401  (first: it sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, which e3nn's import needs)
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(0)
    model = modules.ScaleShiftMACE(
        r_max=4.5,
        num_bessel=4,
        num_polynomial_cutoff=5,
        max_ell=1,
        interaction_cls=modules.interaction_classes['RealAgnosticResidualInteractionBlock'],
        interaction_cls_first=modules.interaction_classes['RealAgnosticResidualInteractionBlock'],
        num_interactions=2,
        num_elements=2,
        hidden_irreps=o3.Irreps('8x0e'),
        MLP_irreps=o3.Irreps('8x0e'),
        atomic_energies=np.array([-13.6, -432.0]),
        avg_num_neighbors=2.0,
        atomic_numbers=[1, 8],
        correlation=2,
        gate=torch.nn.functional.silu,
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )
    path = tmp_path_factory.mktemp('model') / 'tiny.model'
    torch.save(model.to(torch.float64), path)
    return path
