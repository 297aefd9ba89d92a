"""The fixed cost of a MACE job before any work, against a bare ``python -c 'import torch'`` in the same run.

    python benchmarks/job_startup.py               # 3 repeats of each step (about 2 minutes on an idle laptop)
    python benchmarks/job_startup.py --repeats 1 --no-train

What runs, each as its own process, as the remote runs it (no AiiDA: the job folders are laid out as the CalcJobs
lay them out, with the driver script and the shipped pure modules beside the configuration):

* ``python -c pass``: the interpreter with this environment's site-packages;
* ``python -c 'import torch'``: the floor no MACE job can go below (interpreter + torch);
* ``python -c 'import mace.calculators'``: torch + MACE's import chain (e3nn, scipy.signal, torch._dynamo,
  torchmetrics);
* ``mace_evaluate.py`` on two 32-atom Cu cells with the committed tiny model (tests/data_files/md): its own
  ``timings`` (imports, read, MACE import, model load, total) from ``results.json``;
* the training wrapper ``mace_train.py`` for one epoch on 12 frames of the xTB set (``--no-train`` skips it): wall
  time of the job, and the time until MACE logs its first line (interpreter + run_train imports) from its log.

Prints wall seconds (median over repeats), CPU seconds of the child processes, and each figure divided by the bare
torch import of the same run. The machine's load average is printed with the figures: on a shared machine wall
times scale with the load, the ratios much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``command`` in ``cwd``; return (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def evaluate_folder(directory: Path) -> Path:
    """Lay out a ``mofal.mace.evaluate`` job as the CalcJob does: script, shipped modules, config, inputs."""
    import numpy as np
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.io import write

    from aiida_mofal.mlp import features, metrics
    from aiida_mofal.uncertainty import gmm

    folder = directory / 'evaluate'
    folder.mkdir()
    shutil.copy(ROOT / 'calculations' / 'scripts' / 'mace_evaluate.py', folder)
    for name, module in (('mofal_metrics.py', metrics), ('mofal_features.py', features), ('mofal_gmm.py', gmm)):
        shutil.copy(module.__file__, folder / name)
    shutil.copy(ROOT / 'tests' / 'data_files' / 'md' / 'cu_emt_tiny.model', folder / 'model.model')
    frames = []
    for seed in (1, 2):
        atoms = bulk('Cu', cubic=True) * (2, 2, 2)
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = None
        atoms.info.update(REF_energy=energy, config_type='periodic')
        atoms.arrays['REF_forces'] = np.asarray(forces)
        frames.append(atoms)
    write(folder / 'structures.extxyz', frames, format='extxyz')
    config = {
        'mode': 'evaluate', 'model': 'model.model', 'structures': 'structures.extxyz', 'device': 'cpu',
        'dtype': 'float64', 'percentile': 95.0, 'write_features': False, 'max_atoms_per_batch': 5000,
        'max_atoms_per_chunk': None, 'density_model': None,
    }  # fmt: skip
    (folder / 'config.json').write_text(json.dumps(config))
    return folder


def train_folder(directory: Path) -> Path:
    """Lay out a one-epoch ``mofal.mace.train`` job on 12 frames of tests/data_files/xtb."""
    from ase.io import read, write

    from aiida_mofal.mlp.training import mace_arguments
    from aiida_mofal.protocols import load_protocol

    folder = directory / 'train'
    folder.mkdir()
    shutil.copy(ROOT / 'calculations' / 'scripts' / 'mace_train.py', folder)
    xtb = ROOT / 'tests' / 'data_files' / 'xtb'
    frames = read(xtb / 'organics_gfn1xtb.extxyz', index=':12')
    write(folder / 'train.xyz', frames[:8], format='extxyz')
    write(folder / 'valid.xyz', frames[8:], format='extxyz')
    e0s = json.loads((xtb / 'organics_gfn1xtb.json').read_text())['isolated_atom_energies']
    tiny = load_protocol('mace', 'tiny', {'hyperparameters': {'max_num_epochs': 1, 'swa': False}})
    argv = mace_arguments(tiny['hyperparameters'], e0s=e0s, seed=1, dtype='float32', device='cpu', num_train=8,
                          num_valid=4)  # fmt: skip
    config = {'argv': argv, 'deadline_seconds': None, 'status_file': 'mofal_status.json'}
    (folder / 'mace_args.json').write_text(json.dumps(config))
    return folder


def first_log_line_delay(folder: Path, wall: float) -> float:
    """Seconds from the job's start until MACE logged its first line (interpreter, imports), from the log stamps."""
    from datetime import datetime

    log = next((folder / 'logs').glob('*.log')).read_text().splitlines()
    stamp = lambda line: datetime.strptime(line[:23], '%Y-%m-%d %H:%M:%S.%f').timestamp()  # noqa: E731
    started = (folder / 'mofal_status.json').stat().st_mtime - wall  # the status file is written at the end
    return stamp(log[0]) - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--no-train', action='store_true', help='skip the one-epoch training job')
    args = parser.parse_args()
    python = sys.executable
    rows: dict[str, list[tuple[float, float]]] = {}
    extra: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        evaluate = evaluate_folder(directory)
        train = None if args.no_train else train_folder(directory)
        for _ in range(args.repeats):  # interleaved, so that a change of load hits every step alike
            rows.setdefault('python -c pass', []).append(run([python, '-c', 'pass'], directory))
            rows.setdefault('import torch', []).append(run([python, '-c', 'import torch'], directory))
            rows.setdefault('import mace.calculators', []).append(
                run([python, '-c', 'import mace.calculators'], directory)
            )
            rows.setdefault('evaluate job', []).append(run([python, 'mace_evaluate.py', 'config.json'], evaluate))
            timings = json.loads((evaluate / 'results.json').read_text())['timings']
            for key, value in timings.items():
                extra.setdefault(f'evaluate job: {key}', []).append(value)
            if train is not None:
                for stale in ('logs', 'results', 'checkpoints'):
                    shutil.rmtree(train / stale, ignore_errors=True)
                wall, cpu = run([python, 'mace_train.py', 'mace_args.json'], train)
                rows.setdefault('train job (1 epoch)', []).append((wall, cpu))
                extra.setdefault('train job: until MACE logs', []).append(first_log_line_delay(train, wall))
    floor = statistics.median(wall for wall, _ in rows['import torch'])
    print(f'load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores, {args.repeats} repeats (medians)')
    print(f'{"step":<34} {"wall s":>8} {"CPU s":>8} {"x import torch":>15}')
    for name, values in rows.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f'{name:<34} {wall:8.2f} {cpu:8.2f} {wall / floor:15.2f}')
    for name, values in extra.items():
        wall = statistics.median(values)
        print(f'{name:<34} {wall:8.2f} {"":>8} {wall / floor:15.2f}')


if __name__ == '__main__':
    main()
