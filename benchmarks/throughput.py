"""Benchmark: many small processes through the daemon, PostgreSQL + RabbitMQ against SQLite + the built-in broker.

For each of the two profiles of ``mofal setup`` (``--postgres``: ``core.psql_dos`` + ``core.rabbitmq`` on
127.0.0.1; default: ``core.sqlite_dos`` + aiida-core 2.9's built-in ``core.zeromq`` broker, which the daemon
starts itself) in a fresh ``AIIDA_PATH``: start the daemon with W workers, submit N of aiida-core's own
``core.arithmetic.multiply_add`` work chains at once (each: the work chain, a ``multiply`` calcfunction and an
``ArithmeticAddCalculation`` CalcJob that really runs ``bash`` through ``core.direct`` on ``localhost``: three
processes, a real upload / submit / poll / retrieve / parse), and wait until every one has ended.

``--workload label`` submits N ``mofal.label`` work chains instead, each labelling one small molecule of
``tests/data_files/xtb`` with GFN1-xTB on ``cp2k@localhost`` (the work chain, its ``structures_from_dataset`` and
``collect_labels`` calcfunctions, ``Cp2kBaseWorkChain`` and a real CP2K ``Cp2kCalculation``: five processes each).

Printed per profile: wall time from the first submission to the last process's end, processes finished per
minute, and the checks that nothing was lost or duplicated (every work chain finished ok with exactly one CalcJob
and one calcfunction, and the right sum); then the PostgreSQL/SQLite ratios. aiida-core 2.9 offers no other
broker: ``--no-broker`` profiles only ``run()`` in process, so a daemon needs RabbitMQ or ZeroMQ.

Run: .venv/bin/python benchmarks/throughput.py [--n 20] [--workers 2] [--only sqlite|postgres] [--workload label]
The default run (N=20, 2 workers) takes a few minutes on the 2-core project machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent

SUBMIT = r"""
import json, sys, time
from aiida import load_profile, orm
from aiida.engine import submit
from aiida.plugins import WorkflowFactory
load_profile()
n = int(sys.argv[1])
computer = orm.load_computer('localhost')
try:
    code = orm.load_code('bash@localhost')
except Exception:
    code = orm.InstalledCode(label='bash', computer=computer, filepath_executable='/bin/bash',
                             default_calc_job_plugin='core.arithmetic.add').store()
MultiplyAdd = WorkflowFactory('core.arithmetic.multiply_add')
start = time.time()
pks = [submit(MultiplyAdd, x=orm.Int(i), y=orm.Int(2), z=orm.Int(1), code=code).pk for i in range(n)]
print(json.dumps({'pks': pks, 'start': start, 'submitted': time.time()}))
"""

SUBMIT_LABEL = r"""
import json, sys, time
from pathlib import Path
from aiida import load_profile, orm
from aiida.engine import submit
load_profile()
from aiida_mofal.data import DatasetData
from aiida_mofal.workchains.label import LabelWorkChain
n, root = int(sys.argv[1]), Path(sys.argv[2])
frames = DatasetData.from_file(root / 'tests' / 'data_files' / 'xtb' / 'organics_gfn1xtb.extxyz').get_atoms()
code = orm.load_code('cp2k@localhost')
builders = []
for i in range(n):
    atoms = frames[i % len(frames)].copy()
    atoms.info = {'config_type': 'cluster', 'charge': 0, 'multiplicity': 1}
    builders.append(LabelWorkChain.get_builder_from_protocol(
        code, [atoms], protocol='xtb', overrides={'isolated_atoms': False},
        options={'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}))
start = time.time()
pks = [submit(builder).pk for builder in builders]
print(json.dumps({'pks': pks, 'start': start, 'submitted': time.time()}))
"""

#: the start of both check scripts: load the submitted nodes (pks in argv[1]), say "not done" until all have
#: terminated, then list every process they ran as ``processes``; each check goes on to judge its own outputs
_CHECK_TERMINATED = r"""
import json, sys
from aiida import load_profile, orm
load_profile()
pks = json.loads(sys.argv[1])
nodes = [orm.load_node(pk) for pk in pks]
if not all(node.is_terminated for node in nodes):
    print(json.dumps({'done': False, 'terminated': sum(node.is_terminated for node in nodes)})); sys.exit()
processes = [n for node in nodes for n in [node, *node.called_descendants]]
"""

CHECK_LABEL = (
    _CHECK_TERMINATED
    + r"""
bad = []
for node in nodes:
    calcjobs = [c for c in node.called_descendants if isinstance(c, orm.CalcJobNode)]
    ok = node.is_finished_ok and len(calcjobs) == 1 and node.outputs.dataset.count == 1
    if not ok:
        bad.append(node.pk)
print(json.dumps({'done': True, 'processes': len(processes), 'last_end': max(n.mtime.timestamp() for n in processes),
                  'bad': bad}))
"""
)

CHECK = (
    _CHECK_TERMINATED
    + r"""
ends = [n.mtime.timestamp() for n in processes]
bad = []
for i, node in enumerate(nodes):
    calcjobs = [c for c in node.called if isinstance(c, orm.CalcJobNode)]
    functions = [c for c in node.called if isinstance(c, orm.CalcFunctionNode)]
    ok = node.is_finished_ok and len(calcjobs) == 1 and len(functions) == 1 and node.outputs.result.value == i * 2 + 1
    if not ok:
        bad.append(node.pk)
print(json.dumps({'done': True, 'processes': len(processes), 'last_end': max(ends), 'bad': bad}))
"""
)


def run(command: list, aiida_path: Path, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, 'AIIDA_PATH': str(aiida_path), 'PATH': f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}'}
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f'{command} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}')
    return result


def measure(kind: str, n: int, workers: int, timeout: float, workload: str = 'multiply_add') -> dict:
    """Set up a fresh profile of ``kind``, run N work chains with W daemon workers, return the figures."""
    folder = Path(tempfile.mkdtemp(prefix=f'mofal-throughput-{kind}-'))
    name = f'throughput-{kind}-{os.getpid()}'
    setup = [BIN / 'mofal', 'setup', '--name', name, '--json'] + (['--postgres'] if kind == 'postgres' else [])
    summary = json.loads(run(setup, folder).stdout)
    run([BIN / 'verdi', 'daemon', 'start', str(workers)], folder)
    try:
        if workload == 'label':
            submit, check = [SUBMIT_LABEL, str(n), Path(__file__).resolve().parent.parent], CHECK_LABEL
        else:
            submit, check = [SUBMIT, str(n)], CHECK
        submitted = json.loads(run([sys.executable, '-c', *submit], folder).stdout)
        deadline = time.time() + timeout
        while True:
            state = json.loads(run([sys.executable, '-c', check, json.dumps(submitted['pks'])], folder).stdout)
            if state['done'] or time.time() > deadline:
                break
            time.sleep(2)
    finally:
        run([BIN / 'verdi', 'daemon', 'stop'], folder, check=False)
        run([BIN / 'verdi', 'profile', 'delete', '--force', '--delete-data', name], folder, check=False)
    if not state['done']:
        raise RuntimeError(f'{kind}: only {state["terminated"]} of {n} work chains ended in {timeout:.0f} s')
    wall = state['last_end'] - submitted['start']
    return {
        'profile': f'{summary["storage"]} + {summary["broker"]}',
        'wall': wall,
        'submit': submitted['submitted'] - submitted['start'],
        'processes': state['processes'],
        'per_minute': state['processes'] / wall * 60.0,
        'bad': state['bad'],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--n', type=int, default=20, help='work chains submitted at once (3 processes each)')
    parser.add_argument('--workers', type=int, default=2, help='daemon workers')
    parser.add_argument('--only', choices=('sqlite', 'postgres'), default=None)
    parser.add_argument('--timeout', type=float, default=1800.0, help='seconds per profile')
    parser.add_argument('--workload', choices=('multiply_add', 'label'), default='multiply_add')
    args = parser.parse_args()
    kinds = [args.only] if args.only else ['sqlite', 'postgres']
    rows = {kind: measure(kind, args.n, args.workers, args.timeout, args.workload) for kind in kinds}
    what = (
        'mofal.label of one xTB molecule (5 processes'
        if args.workload == 'label'
        else ('core.arithmetic.multiply_add (3 processes')
    )
    print(f'{args.n} x {what} each), {args.workers} daemon workers')
    print(f'{"profile":<34} {"processes":>9} {"submit s":>9} {"wall s":>8} {"processes/min":>14} {"lost/dup/bad":>13}')
    for row in rows.values():
        print(
            f'{row["profile"]:<34} {row["processes"]:>9} {row["submit"]:>9.1f} {row["wall"]:>8.1f} '
            f'{row["per_minute"]:>14.1f} {len(row["bad"]):>13}'
        )
    if len(rows) == 2:
        sqlite, postgres = rows['sqlite'], rows['postgres']
        print(
            f'ratio postgres/sqlite: wall {postgres["wall"] / sqlite["wall"]:.2f}, '
            f'processes/min {postgres["per_minute"] / sqlite["per_minute"]:.2f}'
        )
    if any(row['bad'] for row in rows.values()):
        sys.exit(f'work chains that did not finish as they should: { {k: r["bad"] for k, r in rows.items()} }')


if __name__ == '__main__':
    main()
