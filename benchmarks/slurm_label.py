"""Benchmark: the same GFN1-xTB labels on ``localhost`` (core.direct) and through SLURM over SSH, in one run.

N Zn(HIm)4 2+ clusters (as ``label_overhead.py``) are labelled by the ``mofal.label`` work chain on
``cp2k@localhost`` and then on ``cp2k@slurm-localhost`` (``.ci/start-slurm.sh`` +
``mofal computer setup examples/computers/slurm-localhost.yaml``), ``max_concurrent`` 2 both times (the SLURM
node has this machine's cores). While the SLURM run goes, ``sinfo`` and ``squeue`` are sampled over SSH.
Prints wall times, their ratio, the SLURM jobs seen, and one squeue sample with jobs in it.

Run: AIIDA_PATH=.aiida .venv/bin/python benchmarks/slurm_label.py [--n 6]
"""

import argparse
import subprocess
import threading
import time

from aiida import engine, load_profile, orm
from label_overhead import clusters  # the benchmark next to this one


def run(code, frames):
    from aiida_mofal.workchains.label import LabelWorkChain

    overrides = {'isolated_atoms': False, 'calculation': {'max_concurrent': 2}}
    builder = LabelWorkChain.get_builder_from_protocol(code, frames, protocol='xtb', overrides=overrides)
    start = time.perf_counter()
    _, node = engine.run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    calcs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    return time.perf_counter() - start, calcs


def sample(samples: list, stop: threading.Event):
    while not stop.is_set():
        out = subprocess.run(
            ['ssh', 'mofal-slurm', 'sinfo -h -o "%P %T %C"; squeue -o "%.6i %.9P %.12j %.2t %.8M %R"'],
            capture_output=True,
            text=True,
        ).stdout
        samples.append((time.strftime('%H:%M:%S'), out))
        stop.wait(2.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--n', type=int, default=6)
    args = parser.parse_args()
    load_profile()
    from aiida.manage import get_manager

    get_manager().get_runner(communicator=None)  # engine.run needs no broker (none runs without the daemon)
    frames = clusters(args.n)
    local, _ = run(orm.load_code('cp2k@localhost'), frames)
    samples, stop = [], threading.Event()
    thread = threading.Thread(target=sample, args=(samples, stop), daemon=True)
    thread.start()
    remote, calcs = run(orm.load_code('cp2k@slurm-localhost'), frames)
    stop.set()
    thread.join()
    jobs = sorted(int(c.get_job_id()) for c in calcs)
    busy = next((s for s in samples if s[1].count('\n') > 2), samples[-1])
    print(f'{args.n} xTB labels of Zn(HIm)4 2+ (37 atoms), max_concurrent 2')
    print(f'localhost (core.local + core.direct):        {local:7.1f} s  ({local / args.n:.1f} s per label)')
    print(f'slurm-localhost (core.ssh_async + core.slurm): {remote:7.1f} s  ({remote / args.n:.1f} s per label)')
    print(f'ratio SLURM/localhost: {remote / local:.2f}; SLURM job ids {jobs[0]}..{jobs[-1]} ({len(jobs)} jobs)')
    print(f'--- sinfo; squeue at {busy[0]} ---\n{busy[1]}')


if __name__ == '__main__':
    main()
