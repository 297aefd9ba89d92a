"""GPU check: MACE inference speed with and without cuequivariance, a training epoch on CUDA vs CPU, the S_sup scan.

Meant for a machine with a GPU and no network (``run.sh`` installs the wheels of ``requirements.txt`` that travel
with the working tree); it also runs on a CPU with ``--smoke`` (small sizes), which is how it is tested where
no GPU exists. Each section watches the time budget (default 8 minutes in all) and says what it skipped.

Measured, and printed as one JSON document (``--out`` writes it to a file too):

* ``inference``: atom-steps per second of energy + forces (``MACECalculator``, float32) for UiO-66(Zr) cells of
  about 2k / 8k / 22k atoms, with ``enable_cueq`` off and on (on only where cuequivariance imports);
* ``training``: seconds of one epoch (Adam, energy + forces loss, batch 8) on the 72 xTB frames of
  ``tests/data_files/xtb``, on CUDA and on the CPU, with the ratio;
* ``scan``: seconds of the last-layer features (``aiida_mofal.mlp.features``) of S_sup, the disordered
  4×4×4 UiO-66 (``build_uio66(4, linker=0.2, hf=0.2, brick=0.1, seed=0)``, about 23k atoms).

The models are randomly initialised MACE models (``tests/mlp/mace_models.py``; ``--channels`` sets
``Nx0e+Nx1o``): speed depends on the architecture, not on the weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / 'src'), str(ROOT)]  # the science layer and tests/mlp, without installing the package
UIO66 = [1, 6, 8, 40, 72]  # H, C, O, Zr, Hf


class Budget:
    """The time left for the whole check; a section asks before each measurement."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def environment() -> dict:
    import torch

    info = {'torch': torch.__version__, 'cuda': torch.cuda.is_available(), 'python': sys.version.split()[0]}
    if info['cuda']:
        info['device_name'] = torch.cuda.get_device_name(0)
        info['cuda_version'] = torch.version.cuda
    try:
        import cuequivariance_torch

        info['cuequivariance_torch'] = getattr(cuequivariance_torch, '__version__', 'yes')
    except ImportError as error:
        info['cuequivariance_torch'] = f'not available: {error}'
    import mace

    info['mace'] = mace.__version__
    return info


def uio66_cell(atoms_wanted: int):
    """A pristine UiO-66(Zr) cell repeated to about ``atoms_wanted`` atoms (456 atoms per conventional cell)."""
    from aiida_mofal.structures.uio66 import uio66_unit_cell

    cells = max(1, round(atoms_wanted / 456))
    shape = min(
        ((a, b, c) for a in range(1, 7) for b in range(a, 7) for c in range(b, min(2 * a, 6) + 1)),
        key=lambda s: (abs(s[0] * s[1] * s[2] - cells), s[2] - s[0]),
    )
    atoms = uio66_unit_cell('Zr').repeat(shape)
    atoms.rattle(0.02, seed=1)
    if atoms_wanted < len(atoms):  # --smoke: a non-periodic piece of one cell, to be quick on a CPU
        atoms = atoms[:atoms_wanted]
        atoms.pbc = False
    return atoms


def inference(model: Path, device: str, sizes: list[int], steps: int, budget: Budget) -> list[dict]:
    from mace.calculators import MACECalculator

    try:
        import cuequivariance_torch  # noqa: F401

        cueq_modes = [False, True]
    except ImportError:
        cueq_modes = [False]
    rows = []
    for size in sizes:
        atoms = uio66_cell(size)
        for cueq in cueq_modes:
            row = {'atoms': len(atoms), 'cueq': cueq, 'device': device}
            if budget.left() < 20:
                rows.append({**row, 'skipped': 'time budget spent'})
                continue
            try:
                calc = MACECalculator(model_paths=str(model), device=device, default_dtype='float32', enable_cueq=cueq)
                work = atoms.copy()
                work.calc = calc
                work.get_forces()  # warm-up: compilation, neighbour-list buffers, CUDA kernels
                _sync(device)
                start = time.perf_counter()
                done = 0
                while done < steps and (done == 0 or time.perf_counter() - start < 0.1 * budget.left()):
                    work.positions += 0.001  # a new geometry each step, as MD gives
                    work.get_forces()
                    done += 1
                _sync(device)
                seconds = time.perf_counter() - start
                row.update(steps=done, seconds=round(seconds, 3), atom_steps_per_s=round(len(atoms) * done / seconds))
                if device == 'cuda':
                    import torch

                    row['peak_gpu_mb'] = round(torch.cuda.max_memory_allocated() / 2**20)
                    torch.cuda.reset_peak_memory_stats()
            except Exception as error:  # noqa: BLE001 -- out of memory, cueq kernel missing: the finding itself
                row['error'] = f'{type(error).__name__}: {str(error)[:300]}'
            rows.append(row)
    return rows


def _sync(device: str) -> None:
    if device == 'cuda':
        import torch

        torch.cuda.synchronize()


def training_epoch(device: str, channels: int, budget: Budget, frames_max: int | None = None) -> dict:
    """Seconds of one training epoch on the 72 xTB frames (energy + forces loss, Adam, batch 8)."""
    import torch
    from mace import data as mace_data
    from mace.tools import torch_geometric, utils

    from aiida_mofal.mlp.configurations import read_extxyz
    from tests.mlp.mace_models import build_mace_model

    if budget.left() < 30:
        return {'device': device, 'skipped': 'time budget spent'}
    frames = read_extxyz(ROOT / 'tests' / 'data_files' / 'xtb' / 'organics_gfn1xtb.extxyz')[:frames_max]
    numbers = sorted({int(z) for atoms in frames for z in atoms.numbers})
    with tempfile.TemporaryDirectory() as folder:
        path = build_mace_model(
            Path(folder) / 'train.model', atomic_numbers=numbers, hidden_irreps=f'{channels}x0e+{channels}x1o'
        )
        model = torch.load(path, weights_only=False).float().to(device)
    table = utils.AtomicNumberTable(numbers)
    keys = mace_data.KeySpecification(info_keys={'energy': 'REF_energy'}, arrays_keys={'forces': 'REF_forces'})
    torch.set_default_dtype(torch.float32)
    configs = [mace_data.config_from_atoms(atoms, key_specification=keys) for atoms in frames]
    graphs = [mace_data.AtomicData.from_config(config, z_table=table, cutoff=5.0) for config in configs]
    loader = torch_geometric.dataloader.DataLoader(graphs, batch_size=8, shuffle=True)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch() -> float:
        start = time.perf_counter()
        for batch in loader:
            batch = batch.to(device)
            optimiser.zero_grad()
            out = model(batch.to_dict(), training=True, compute_force=True)
            loss = ((out['energy'] - batch.energy) ** 2).mean() + ((out['forces'] - batch.forces) ** 2).mean()
            loss.backward()
            optimiser.step()
        _sync(device)
        return time.perf_counter() - start

    first = epoch()  # includes the first-call costs (kernels, allocator)
    second = epoch() if budget.left() > 3 * first else None
    row = {'device': device, 'frames': len(frames), 'first_epoch_s': round(first, 3)}
    return {**row, 'epoch_s': round(second, 3) if second is not None else None}


def scan(model: Path, device: str, supercell: int, budget: Budget) -> dict:
    from aiida_mofal.mlp.features import FeatureExtractor
    from aiida_mofal.structures.uio66 import build_uio66

    if budget.left() < 30:
        return {'skipped': 'time budget spent'}
    start = time.perf_counter()
    atoms = build_uio66(supercell, linker=0.2, hf=0.2, brick=0.1, seed=0)
    built = time.perf_counter() - start
    extractor = FeatureExtractor(model, device=device, dtype='float32', max_atoms_per_batch=10**9)
    extractor.features(atoms[:64])
    start = time.perf_counter()
    features = extractor.features(atoms)
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        'structure': f'UiO-66 {supercell}x{supercell}x{supercell}, linker 0.2, hf 0.2, brick 0.1, seed 0',
        'atoms': len(atoms),
        'build_s': round(built, 2),
        'features_s': round(seconds, 3),
        'features_shape': list(features.shape),
        'finite': bool(np.isfinite(features).all()),
        'device': device,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--smoke', action='store_true', help='small sizes, CPU allowed: the check of the check')
    parser.add_argument('--device', choices=['auto', 'cuda', 'cpu'], default='auto')
    parser.add_argument('--budget', type=float, default=480.0, help='seconds for everything (default 8 minutes)')
    parser.add_argument('--channels', type=int, default=None, help='Nx0e+Nx1o (default 64 on a GPU, 4 in --smoke)')
    parser.add_argument('--out', type=Path, default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter('ignore')
    import mace  # noqa: F401  (before e3nn: it sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD)
    import torch

    from tests.mlp.mace_models import build_mace_model

    budget = Budget(args.budget)
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if args.device == 'auto' else args.device
    if device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no GPU (torch.cuda.is_available() is False)')
    if device == 'cpu' and not args.smoke:
        parser.error('no GPU here: run with --smoke for the small CPU check')
    channels = args.channels or (4 if args.smoke else 64)
    sizes, steps, supercell = ([48], 1, 1) if args.smoke else ([2000, 8000, 22000], 20, 4)
    frames_max = 8 if args.smoke else None
    result = {'environment': environment(), 'device': device, 'smoke': args.smoke, 'channels': channels}
    with tempfile.TemporaryDirectory() as folder:
        model = build_mace_model(
            Path(folder) / 'uio66.model',
            atomic_numbers=UIO66,
            hidden_irreps=f'{channels}x0e+{channels}x1o',
            dtype='float32',
        )
        result['inference'] = inference(model, device, sizes, steps, budget)
        result['training'] = [training_epoch(device, channels, budget, frames_max)]
        if device == 'cuda':
            result['training'].append(training_epoch('cpu', channels, budget, frames_max))
            gpu, cpu = (row.get('epoch_s') for row in result['training'])
            if gpu and cpu:
                result['training_cpu_over_cuda'] = round(cpu / gpu, 2)
        result['scan'] = scan(model, device, supercell, budget)
    result['seconds_total'] = round(args.budget - budget.left(), 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + '\n')
    return result


if __name__ == '__main__':
    main()
