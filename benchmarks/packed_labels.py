"""Benchmark: N xTB labels as one scheduler job each (``mofal.label``) against packed jobs (``mofal.cp2k.packed``).

N small organic molecules of ``tests/data_files/xtb`` (GFN1-xTB, 6-15 atoms) are labelled on one code (default
``cp2k@slurm-localhost``, the project's SLURM over SSH) by the ``mofal.label`` work chain, ``max_concurrent`` 2, in
three modes: ``calculation.pack`` K with ``farm: true`` (ceil(N/K) ``mofal.cp2k.packed`` jobs, one CP2K process
each running its K inputs through CP2K's FARMING), the same with ``farm: false`` (one ``mpirun cp2k`` per
structure inside the job), and one CP2K job per structure. All use the same CP2K input settings. Printed per
mode: scheduler jobs, wall time, the CP2K time summed over the structures (each structure output's own ``CP2K``
timing line), and the AiiDA overhead per label, (wall - sum of CP2K time / c) / labels, where c = min(2, jobs) is
the number of jobs that run at once (one job of K = N runs alone); and the wall time per label.

Run: AIIDA_PATH=.aiida .venv/bin/python benchmarks/packed_labels.py [--n 40] [--k 10[,20,40]]
     [--code cp2k@slurm-localhost] [--single-n M]  (one job per label on the first M structures only, for time)
     [--modes farm,sequential,single]
"""

import argparse
import math
import re
import time
from pathlib import Path

from aiida import engine, load_profile, orm

ROOT = Path(__file__).resolve().parent.parent
MAX_CONCURRENT = 2
CP2K_TIME = re.compile(r'^ CP2K\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s*$', re.MULTILINE)


def cp2k_seconds(text: str) -> float:
    match = CP2K_TIME.search(text)
    return float(match.group(1)) if match else float('nan')


def molecules(n: int):
    from aiida_mofal.data import DatasetData

    frames = DatasetData.from_file(ROOT / 'tests' / 'data_files' / 'xtb' / 'organics_gfn1xtb.extxyz').get_atoms()
    out = []
    for atoms in frames[:n]:
        atoms = atoms.copy()
        atoms.info = {'config_type': 'cluster', 'charge': 0, 'multiplicity': 1}
        out.append(atoms)
    return out


def label(code, frames, pack: int, farm: bool = True) -> dict:
    """Label ``frames`` with ``mofal.label``, ``pack`` structures per scheduler job, two jobs at a time."""
    from aiida_mofal.workchains.label import LabelWorkChain

    overrides = {'isolated_atoms': False, 'calculation': {'max_concurrent': MAX_CONCURRENT, 'pack': pack, 'farm': farm}}
    builder = LabelWorkChain.get_builder_from_protocol(code, frames, protocol='xtb', overrides=overrides)
    start = time.perf_counter()
    _, node = engine.run_get_node(builder)
    wall = time.perf_counter() - start
    calcs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    cp2k = 0.0
    for calc in calcs:
        for name in calc.outputs.retrieved.base.repository.list_object_names():
            if name.endswith('.out') and not name.startswith(('_', 'farm')):  # farm.out: the whole farm
                cp2k += cp2k_seconds(calc.outputs.retrieved.get_object_content(name))
    return {'jobs': len(calcs), 'wall': wall, 'cp2k': cp2k, 'labels': node.outputs.dataset.count}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--n', type=int, default=40)
    parser.add_argument('--k', default='10', help='structures per packed job; several: 10,20,40 (one call, one load)')
    parser.add_argument('--code', default='cp2k@slurm-localhost')
    parser.add_argument('--single-n', type=int, default=None, help='one job per label on only the first M (time)')
    parser.add_argument('--modes', default='farm,sequential,single', help='comma-separated: farm, sequential, single')
    args = parser.parse_args()
    modes = args.modes.split(',')
    load_profile()
    from aiida.manage import get_manager

    get_manager().get_runner(communicator=None)  # in process: no broker needed
    code = orm.load_code(args.code)
    frames = molecules(args.n)
    sizes = [int(k) for k in args.k.split(',')]
    rows = {}
    for k in sizes:
        if 'farm' in modes:
            rows[f'packed K={k}, farm'] = label(code, frames, k, farm=True)
        if 'sequential' in modes:
            rows[f'packed K={k}, 1 cp2k each'] = label(code, frames, k, farm=False)
    if 'single' in modes:
        rows['one job per label'] = label(code, frames[: args.single_n or args.n], 1)
    jobs = ', '.join(f'ceil(N/{k}) = {math.ceil(args.n / k)}' for k in sizes)
    print(f'{args.n} GFN1-xTB labels of small molecules on {args.code}; {jobs}')
    print(
        f'{"mode":<26} {"jobs":>5} {"labels":>7} {"wall s":>8} {"CP2K s":>8} {"overhead s/label":>17}'
        f' {"wall s/label":>13}'
    )
    for mode, row in rows.items():
        at_once = min(MAX_CONCURRENT, row['jobs'])
        overhead = (row['wall'] - row['cp2k'] / at_once) / row['labels']
        print(
            f'{mode:<26} {row["jobs"]:>5} {row["labels"]:>7} {row["wall"]:>8.1f} {row["cp2k"]:>8.1f} {overhead:>17.2f}'
            f' {row["wall"] / row["labels"]:>13.2f}'
        )


if __name__ == '__main__':
    main()
