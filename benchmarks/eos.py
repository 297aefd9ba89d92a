"""Benchmark: ``mofal.eos`` method ``ev`` of the 456-atom UiO-66 cell against the same relaxations as a bare ASE loop.

Run: .venv/bin/python benchmarks/eos.py [--points 9] [--steps 20] [--threads 2] [--model FILE]

What is timed, in one run on the same machine state:

* the work chain: ``EquationOfStateWorkChain`` (``mofal.eos``) with method ``ev`` and ``relax_first`` off, so one
  ``mofal.relax`` job relaxes shape and positions at each of ``--points`` volumes (±6 %) with FIRE; ``fmax`` is
  set unreachably low so that every relaxation runs exactly ``--steps`` steps, in both routes (what is compared is
  the cost of the same work, not of two convergence paths);
* the bare loop: the same scaled cells, ``FrechetCellFilter(constant_volume=True)`` + FIRE + ``MACECalculator``
  in this process, the same steps.

Printed: the work chain's wall time (submission, TorchScript compilation once per model, the job's start-up, the
relaxations, parsing, the fits), the relaxations alone as the job measured them, the bare loop, the ratios, and
the time per relaxation and per step. The default model is a random (untrained) MACE for H, C, N, O, Zr with 16x0e
features and two layers (``tests/mlp/mace_models.py``): the same cost per step as a trained model of that size, but
its E(V) has no physical minimum, so the fit may be refused (the timing is what counts here). A throw-away AiiDA
profile (its own AIIDA_PATH) holds everything.
"""

import argparse
import os
import sys
import time
from pathlib import Path

from bench_profile import throwaway_profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bare_relaxations(model: Path, cells, steps: int, dtype: str) -> list[float]:
    """Relax each cell at fixed volume for ``steps`` FIRE steps in this process; return seconds per relaxation."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from mace.calculators import MACECalculator

    calculator = MACECalculator(model_paths=str(model), device='cpu', default_dtype=dtype)
    seconds = []
    for atoms in cells:
        atoms = atoms.copy()
        atoms.calc = calculator
        start = time.perf_counter()
        FIRE(FrechetCellFilter(atoms, constant_volume=True), logfile=None).run(fmax=1e-6, steps=steps)
        seconds.append(time.perf_counter() - start)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--points', type=int, default=9, help='volumes of the grid (±6 %%)')
    parser.add_argument('--steps', type=int, default=20, help='FIRE steps per relaxation')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='torch threads everywhere')
    parser.add_argument('--model', type=Path, help='a MACE model file (default: a random 16x0e UiO-66 model)')
    args = parser.parse_args()

    _, code = throwaway_profile('eos-bench', args.threads)
    from aiida import engine, orm

    from aiida_mofal.data.mace_model import MaceModelData
    from aiida_mofal.structures.uio66 import uio66_unit_cell
    from aiida_mofal.workchains.eos import EquationOfStateWorkChain
    from tests.mlp.mace_models import build_mace_model

    model = args.model or build_mace_model(Path(os.environ['AIIDA_PATH']) / 'uio66.model', hidden_irreps='16x0e')
    model_node = MaceModelData(model, trusted=True).store()  # made by this script (or given by you)
    dtype = model_node.base.attributes.get('dtype')
    atoms = uio66_unit_cell()
    settings = {
        'ev': {'relax_first': False, 'points': args.points, 'max_steps': args.steps, 'fmax': 1e-6, 'max_iterations': 1}
    }  # one job of exactly --steps steps per relaxation, no continuation
    options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': args.threads},
               'max_wallclock_seconds': 36000}  # fmt: skip
    print(f'UiO-66 {len(atoms)} atoms, {args.points} volumes, {args.steps} FIRE steps each, model {Path(model).name} '
          f'({dtype}), torch threads {args.threads}')  # fmt: skip

    from aiida_mofal.calculations.torchscript import get_torchscript_model

    start = time.perf_counter()
    compiled, why = get_torchscript_model(model_node)  # the work chain falls back to mace-torch the same way
    scripted = 'TorchScript' if compiled is not None else f'mace-torch ({why[:80]})'
    compile_seconds = time.perf_counter() - start
    structure = orm.StructureData(ase=atoms)
    builder = EquationOfStateWorkChain.get_builder_for(code, structure, model_node, ['ev'], settings, options)
    start = time.perf_counter()
    _, node = engine.run_get_node(builder)
    total = time.perf_counter() - start
    relax = next(child for child in node.called if child.process_label == 'MaceRelaxWorkChain')
    job = next(child for child in relax.called if child.process_label == 'MaceRelaxCalculation')
    record = job.outputs.result  # the job's own record (one job: the work chain stops at max_iterations 1)
    in_job = sum(entry['seconds'] for entry in record['structures'].values())
    from aiida_mofal.analysis.eos_methods import validate_method_settings

    factors = validate_method_settings('ev', settings['ev'])['volume_factors']
    cells = []
    for factor in factors:
        scaled = atoms.copy()
        scaled.set_cell(atoms.cell.array * factor ** (1 / 3), scale_atoms=True)
        cells.append(scaled)
    bare = bare_relaxations(Path(model), cells, args.steps, dtype)
    bare_total = sum(bare)
    steps = sum(entry['steps'] for entry in record['structures'].values())
    print(f'model in the jobs: {scripted}; compilation attempt (once per model): {compile_seconds:.1f} s')
    print(f'work chain mofal.eos (ev): {total:.1f} s wall, exit {node.exit_status} {node.exit_message or ""}'.rstrip())
    print(f'  relaxations inside the job: {in_job:.1f} s for {len(record["structures"])} relaxations, {steps} steps; '
          f'job start-up {record["setup_seconds"]:.1f} s')  # fmt: skip
    print(f'bare ASE loop (MACECalculator): {bare_total:.1f} s for {len(bare)} relaxations')
    per_step = bare_total / (len(bare) * args.steps) * 1000
    print(
        f'per relaxation: job {in_job / len(bare):.2f} s, bare {bare_total / len(bare):.2f} s; '
        f'per step: job {in_job / max(steps, 1) * 1000:.0f} ms, bare {per_step:.0f} ms'
    )
    print(
        f'ratios: relaxations in the job / bare = {in_job / bare_total:.3f}; '
        f'whole work chain / bare = {total / bare_total:.3f} (fixed cost {total - in_job:.1f} s)'
    )
    if 'ev' in node.outputs:
        print(f'E–V fit: B0 = {node.outputs.ev["B0_GPa"]:.4g} ± {node.outputs.ev["B0_GPa_err"]:.2g} GPa')


if __name__ == '__main__':
    main()
