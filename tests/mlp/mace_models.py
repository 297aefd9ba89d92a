"""Randomly initialised MACE models for tests and benchmarks: real MACE code, no training needed.

An untrained model's last-layer features are still smooth, invariant functions of each atom's
environment, so they separate geometries; a trained model makes the separation chemically meaningful.
"""

from pathlib import Path

import numpy as np

UIO66_ELEMENTS = [1, 6, 7, 8, 40]  # H, C, N, O, Zr: N is in the model but absent from UiO-66 training sets


def build_mace_model(
    path: Path,
    atomic_numbers=tuple(UIO66_ELEMENTS),
    hidden_irreps: str = '16x0e+16x1o',
    r_max: float = 5.0,
    num_interactions: int = 2,
    seed: int = 0,
    dtype: str = 'float64',
) -> Path:
    """Build a ScaleShiftMACE with equivariant hidden features and save it as mace_run_train does."""
    import mace  # noqa: F401  (first: it sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, which e3nn's own torch.load needs)
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    model = modules.ScaleShiftMACE(
        r_max=r_max,
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=2,
        interaction_cls=modules.interaction_classes['RealAgnosticResidualInteractionBlock'],
        interaction_cls_first=modules.interaction_classes['RealAgnosticResidualInteractionBlock'],
        num_interactions=num_interactions,
        num_elements=len(atomic_numbers),
        hidden_irreps=o3.Irreps(hidden_irreps),
        MLP_irreps=o3.Irreps('16x0e'),
        atomic_energies=np.linspace(-10.0, -2.0, len(atomic_numbers)),
        avg_num_neighbors=20.0,
        atomic_numbers=list(atomic_numbers),
        correlation=3,
        gate=torch.nn.functional.silu,
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )
    model = model.to(torch.float64 if dtype == 'float64' else torch.float32)
    torch.save(model, path)
    return path


def assert_same_predictions(atoms, reference, candidate, atol: tuple[float, float, float], min_force: float) -> None:
    """Assert that ``candidate`` gives ``reference``'s energy, forces and stress on ``atoms`` within ``atol``.

    Why one helper: the TorchScript calculator is checked against MACE's own calculator on both a trained and a
    random model; ``min_force`` makes sure the forces compared are not trivially zero.
    """
    import pytest

    results = []
    for calculator in (reference, candidate):
        atoms.calc = calculator
        results.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    assert results[1][0] == pytest.approx(results[0][0], abs=atol[0])
    np.testing.assert_allclose(results[1][1], results[0][1], atol=atol[1])
    np.testing.assert_allclose(results[1][2], results[0][2], atol=atol[2])
    assert np.abs(results[0][1]).max() > min_force
