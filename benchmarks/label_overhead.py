"""Benchmark: the AiiDA overhead of labelling, as a ratio, measured in one run.

20 GFN1-xTB labels of Zn(HIm)4 2+ clusters (cut from the small Zn(Im)2 framework, rattled) go through the
``mofal.label`` work chain; then the very same CP2K input files (taken from the work chain's calculations)
run in a plain loop of ``mpirun cp2k.psmp``. Both sequential (``max_concurrent 1``) so that the ratio is the
overhead, not parallelism; a second work-chain run with ``max_concurrent 4`` shows what batching gives.

Run (after ``mofal setup``): AIIDA_PATH=.aiida .venv/bin/python benchmarks/label_overhead.py [--n 20]
"""

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from aiida import engine, load_profile, orm

ROOT = Path(__file__).resolve().parent.parent


def clusters(n: int):
    import ase.io

    from aiida_mofal.clusters.extract import extract_clusters

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        framework = ase.io.read(ROOT / 'tests' / 'data_files' / 'structures' / 'ZnIm2-sod_Lewis2009.cif')
    zincs = np.flatnonzero(framework.numbers == 30)
    base = extract_clusters(framework, zincs, mantle_depth=1, merge_depth=0)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        atoms = base[i % len(base)].copy()
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
        frames.append(atoms)
    return frames


def run_workchain(code, frames, concurrent: int):
    from aiida_mofal.workchains.label import LabelWorkChain

    overrides = {'isolated_atoms': False, 'calculation': {'max_concurrent': concurrent}}
    builder = LabelWorkChain.get_builder_from_protocol(code, frames, protocol='xtb', overrides=overrides)
    start = time.perf_counter()
    _, node = engine.run_get_node(builder)
    elapsed = time.perf_counter() - start
    assert node.is_finished_ok, node.exit_message
    return node, elapsed


def run_plain_loop(node, mpirun: str, cp2k: str, procs: int) -> float:
    """Run the work chain's own CP2K inputs, one after another, without AiiDA."""
    calcs = [
        calc
        for base in node.called
        if base.process_label == 'Cp2kBaseWorkChain'
        for calc in base.called
        if isinstance(calc, orm.CalcJobNode)
    ]
    workdir = Path(tempfile.mkdtemp(prefix='label-loop-'))
    inputs = []
    for i, calc in enumerate(calcs):
        folder = workdir / f'c{i}'
        folder.mkdir()
        for name in ('aiida.inp', 'aiida.coords.xyz'):
            (folder / name).write_bytes(calc.base.repository.get_object_content(name, mode='rb'))
        inputs.append(folder)
    start = time.perf_counter()
    for folder in inputs:
        subprocess.run(
            [mpirun, '--allow-run-as-root', '-np', str(procs), cp2k, '-i', 'aiida.inp', '-o', 'aiida.out'],
            cwd=folder,
            check=True,
            capture_output=True,
        )
    elapsed = time.perf_counter() - start
    shutil.rmtree(workdir)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n', type=int, default=20)
    parser.add_argument('--code', default='cp2k@localhost')
    parser.add_argument('--profile', default=None)
    args = parser.parse_args()
    load_profile(args.profile)

    from aiida_mofal.cp2k.executable import find_cp2k, find_mpirun

    code = orm.load_code(args.code)
    procs = code.computer.get_default_mpiprocs_per_machine() or 1
    frames = clusters(args.n)
    print(f'{args.n} Zn(HIm)4 2+ clusters ({len(frames[0])} atoms), GFN1-xTB, {procs} MPI processes per job')

    node, t_chain = run_workchain(code, frames, concurrent=1)
    t_loop = run_plain_loop(node, str(find_mpirun(find_cp2k())), str(find_cp2k()), procs)
    _, t_batch = run_workchain(code, frames, concurrent=4)

    print(f'plain loop of the same CP2K inputs : {t_loop:7.1f} s  ({t_loop / args.n:.2f} s per label)')
    print(f'work chain, max_concurrent 1       : {t_chain:7.1f} s  ({t_chain / args.n:.2f} s per label)')
    print(f'work chain, max_concurrent 4       : {t_batch:7.1f} s  ({t_batch / args.n:.2f} s per label)')
    per_label = (t_chain - t_loop) / args.n
    print(f'overhead ratio (work chain / loop) : {t_chain / t_loop:.2f}  (AiiDA per label: {per_label:.2f} s)')
    print(f'batched ratio  (max_concurrent 4)  : {t_batch / t_loop:.2f}')


if __name__ == '__main__':
    main()
