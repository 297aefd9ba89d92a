"""Benchmark: MD through the ``mofal.md`` CalcJob versus a bare MACE calculator loop, same steps, same model.

Run: .venv/bin/python benchmarks/md_overhead.py [--model FILE] [--steps 100] [--big-steps 10] [--threads 2]
[--walks 1,4]

For 200 and 2,000 Cu atoms (fcc supercells) it times

* the bare loop: ASE ``NoseHooverChainNVT`` + ``MACECalculator`` in this process (the baseline);
* the CalcJob, engine ``ase`` and engine ``lammps-python``, run with ``run_get_node`` on localhost: total time
  (submission, upload, script start with its imports, parsing, storing the trajectory) and the MD loop alone as the
  script measured it;

and prints atom-steps per second and the ratios to the baseline (goal: the loop within 10 % of the bare loop; the
fixed cost of a job is printed separately because it does not grow with the run). The jobs get the model's TorchScript
archive (``aiida_mofal.calculations.torchscript``), as ``MdBaseWorkChain`` jobs do; compiling it happens once per model
and is printed apart. Then, walks per job: ``--walks`` walks of the 200-atom cell in one job versus one job per walk,
and the fixed cost per walk of each. The default model is the tiny
test model (tests/data_files/md/cu_emt_tiny.model): a production MACE model is slower per step, which makes the
fixed cost relatively smaller. Everything runs in a throw-away AiiDA profile (its own AIIDA_PATH).
"""

import argparse
import os
import time
from pathlib import Path

from bench_profile import throwaway_profile

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / 'tests' / 'data_files' / 'md' / 'cu_emt_tiny.model'


def supercell(num_atoms: int):
    from ase.build import bulk

    repeats = {200: (5, 5, 2), 2000: (10, 10, 5)}[num_atoms]
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True) * repeats
    atoms.rattle(0.02, seed=0)
    return atoms


def bare_loop(model: Path, atoms, steps: int, dtype: str) -> float:
    import numpy as np
    from ase import units
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from mace.calculators import MACECalculator

    atoms = atoms.copy()
    atoms.calc = MACECalculator(model_paths=str(model), device='cpu', default_dtype=dtype)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dynamics = NoseHooverChainNVT(atoms, 2.0 * units.fs, temperature_K=300, tdamp=100 * units.fs)
    atoms.get_forces()
    start = time.perf_counter()
    for _ in range(steps):
        dynamics.step()
    return time.perf_counter() - start


def calcjob(code, model_node, atoms, steps: int, engine: str, threads: int, walks: int = 1, compiled=None):
    """Run one job (``walks`` walks of ``atoms``); return its total time, the MD loops' time and the job's set-up."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mofal.calculations.md import MdCalculation
    from aiida_mofal.md.protocol import load_md_settings

    settings = load_md_settings(
        'nvt', {'timestep': 2.0, 'dump_every': 10, 'schedule': [{'steps': steps, 'temperature': 300.0}]}
    )
    structure = orm.StructureData(ase=atoms)
    if walks == 1:
        inputs = {'structure': structure, 'settings': orm.Dict(settings)}
    else:
        inputs = {'walks': {f'walk_{k}': {'structure': structure, 'settings': orm.Dict({**settings, 'seed': k}),
                                          'index': orm.Int(k)} for k in range(walks)}}  # fmt: skip
    if compiled is not None:
        inputs['compiled_model'] = compiled
    start = time.perf_counter()
    _, node = run_get_node(
        MdCalculation,
        code=code,
        model=model_node,
        engine=orm.Str(engine),
        **inputs,
        metadata={
            'options': {
                'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': threads}
            }
        },
    )
    total = time.perf_counter() - start
    if not node.is_finished_ok:
        raise RuntimeError(f'{engine}: MdCalculation<{node.pk}> failed: {node.exit_message}')
    result = node.outputs.result.get_dict()
    return total, sum(walk['loop_seconds'] for walk in result['walks']), result['setup_seconds']


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--model', type=Path, default=DEFAULT_MODEL)
    parser.add_argument('--steps', type=int, default=100, help='MD steps for 200 atoms')
    parser.add_argument('--big-steps', type=int, default=10, help='MD steps for 2,000 atoms')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='torch threads everywhere')
    parser.add_argument('--engines', default='ase,lammps-python')
    parser.add_argument('--walks', default='1,4', help='walks per job to compare with one job per walk')
    parser.add_argument(
        '--eager', action='store_true', help='load the model with mace-torch in the jobs (no TorchScript)'
    )
    args = parser.parse_args()

    _, code = throwaway_profile('md-bench', args.threads)
    from aiida_mofal.data.mace_model import MaceModelData

    model_node = MaceModelData(args.model, trusted=True).store()
    dtype = model_node.base.attributes.get('dtype')
    compiled = None
    if not args.eager:
        from aiida_mofal.calculations.torchscript import get_torchscript_model

        start = time.perf_counter()
        compiled, why = get_torchscript_model(model_node)
        if compiled is None:
            raise SystemExit(f'{why}; run with --eager')
        print(f'TorchScript archive of the model: {time.perf_counter() - start:.1f} s, once per model')
    print(f'model {args.model.name} ({dtype}), torch threads {args.threads}, profile in {os.environ["AIIDA_PATH"]}')
    print(f'{"atoms":>6} {"steps":>6} {"how":<22} {"total s":>9} {"loop s":>8} {"atom-steps/s":>13} {"loop/bare":>10}')
    for num_atoms, steps in ((200, args.steps), (2000, args.big_steps)):
        atoms = supercell(num_atoms)
        # the machine may be shared: time the bare loop before and after the jobs and compare with their mean
        bare_before = bare_loop(args.model, atoms, steps, dtype)
        jobs = {
            engine: calcjob(code, model_node, atoms, steps, engine, args.threads, compiled=compiled)
            for engine in args.engines.split(',')
        }
        bare_after = bare_loop(args.model, atoms, steps, dtype)
        bare = 0.5 * (bare_before + bare_after)
        print(f'{num_atoms:>6} {steps:>6} {"bare MACE loop (ASE)":<22} {bare:>9.2f} {bare:>8.2f} '
              f'{num_atoms * steps / bare:>13.0f} {1.0:>10.3f}'
              f'   (before {bare_before:.2f} s, after {bare_after:.2f} s)')  # fmt: skip
        for engine, (total, loop, in_job) in jobs.items():
            print(f'{num_atoms:>6} {steps:>6} {"CalcJob " + engine:<22} {total:>9.2f} {loop:>8.2f} '
                  f'{num_atoms * steps / loop:>13.0f} {loop / bare:>10.3f}'
                  f'   (total/bare {total / bare:.2f}, fixed cost {total - loop:.1f} s, of which imports and model '
                  f'in the job {in_job:.1f} s)')  # fmt: skip
    walks_per_job(args, code, model_node, compiled)


def walks_per_job(args, code, model_node, compiled) -> None:
    """Print the fixed cost per walk of one job with N walks against N jobs of one walk (engine ase, 200 atoms)."""
    atoms = supercell(200)
    counts = [int(count) for count in args.walks.split(',')]
    print(f'\nwalks per job (200 atoms, {args.steps} steps each, engine ase)')
    print(f'{"walks":>6} {"how":<16} {"total s":>9} {"loops s":>8} {"fixed s/walk":>13}')
    for count in counts:
        one = calcjob(code, model_node, atoms, args.steps, 'ase', args.threads, walks=count, compiled=compiled)
        separate = [calcjob(code, model_node, atoms, args.steps, 'ase', args.threads, compiled=compiled)
                    for _ in range(count)]  # fmt: skip
        for how, (total, loop) in (
            ('one job', one[:2]),
            (f'{count} job(s)', (sum(r[0] for r in separate), sum(r[1] for r in separate))),
        ):
            print(f'{count:>6} {how:<16} {total:>9.2f} {loop:>8.2f} {(total - loop) / count:>13.2f}')  # fmt: skip


if __name__ == '__main__':
    main()
