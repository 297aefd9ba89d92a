"""Benchmark: MD steps spent per extracted cluster, uncertainty-gated walks against fixed-length walks.

Run (after `make demo`, in the demo's profile):
    AIIDA_PATH=$PWD/.aiida .venv/bin/python benchmarks/gated_exploration.py --campaign PK [--cycle 0]
        [--walks 4] [--steps 200] [--threshold 0.01] [--temperature 300] [--max-clusters 6]

The model and density model are those of one cycle of a finished campaign (default: the demo's cycle 0, i.e. the
model that walks in cycle 1), the target is the campaign's own. For the same seeds and pressures, every walk runs
twice through the MD driver (``md_run.py``, engine ase, shipped copies only, as a ``mofal.md`` job runs it): fixed
length (``--steps``, the campaign's walk) and gated (the walk ends at its first dumped frame with ``--threshold``
unknown atoms, ``aiida_mofal.md.gate``). The frames of both are then scanned and cut exactly as the campaign does
(``campaign.scan.scan_walks``: features, density model, clusters with the target's blocks mapped onto the frame,
the ``--max-clusters`` most uncertain per cycle, and without the cap). Printed: MD steps, wall time, clusters, and
steps per cluster for both, and their ratio. The gate's own cost (one feature pass per checked frame) is in the
gated walks' wall time.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def campaign_parts(pk: int, cycle: int):
    """Return (model node, density node, target Atoms, campaign settings) of cycle ``cycle`` of campaign ``pk``."""
    from aiida import load_profile, orm

    load_profile()
    campaign = orm.load_node(pk)
    record = campaign.outputs.cycles[f'cycle_{cycle}'].get_dict()
    train = orm.load_node(record['processes']['train'])
    fit = orm.load_node(record['processes']['density_fit'])
    density = next(
        node for node in fit.base.links.get_outgoing().all_nodes() if node.node_type.startswith('data.mofal')
    )
    (name, structure), *_ = sorted(campaign.inputs.targets.items())
    return train.outputs.model, density, name, structure.get_ase(), campaign.inputs.settings.get_dict()


def run_walks(directory: Path, model_file: Path, atoms, walks: list, gate: dict | None) -> tuple[list, float]:
    """Run ``walks`` in one driver job (as ``mofal.md`` does); return the walk results and the wall time."""
    from aiida_mofal.calculations.md import ship_driver
    from aiida_mofal.md import job

    directory.mkdir(parents=True)
    specs = [{'index': i, 'atoms': atoms, 'settings': settings, 'restart': False} for i, settings in enumerate(walks)]
    config = {'model_file': str(model_file), 'dtype': 'float64', 'device': 'cpu', 'torch_threads': 1,
              'model_format': 'mace', **({'gate': gate} if gate else {})}  # fmt: skip
    job.write_job(directory, 'ase', specs, **config)
    ship_driver(directory)
    isolated = "import runpy, sys; sys.modules['aiida_mofal'] = None; sys.argv = ['md_run.py', 'md_input.json']; "
    isolated += "runpy.run_path('md_run.py', run_name='__main__')"
    start = time.perf_counter()
    subprocess.run([sys.executable, '-W', 'ignore', '-c', isolated], cwd=directory, check=True, capture_output=True,
                   env={**os.environ, 'OMP_NUM_THREADS': '1'})  # fmt: skip
    wall = time.perf_counter() - start
    return json.loads((directory / 'md_result.json').read_text())['walks'], wall


def frames_of(directory: Path, position: int, atoms) -> list:
    from aiida_mofal.md import job

    with np.load(directory / job.walk_directory(position) / 'trajectory.npz') as handle:
        positions, cells = handle['positions'], handle['cells']
    frames = []
    for xyz, cell in zip(positions, cells):
        frame = atoms.copy()
        frame.set_cell(cell)
        frame.positions = xyz
        frames.append(frame)
    return frames


def clusters_from(frames_per_walk: list, model, density, name: str, target, extract: dict, cap: int | None) -> int:
    """Scan and cut as the campaign does; return the number of clusters (``cap``: the cycle's max_clusters)."""
    from aiida_mofal.campaign.scan import scan_walks

    everything = [frame for frames in frames_per_walk for frame in frames]
    scores = iter(density.score(everything, model))
    per_walk = [[next(scores) for _ in frames] for frames in frames_per_walk]
    records = [{'target': name, 'walk': i} for i in range(len(frames_per_walk))]
    options = {**extract, 'max_clusters': cap or 10**6}
    options.pop('reference_topology', None)
    summary, clusters = scan_walks(records, frames_per_walk, per_walk, options, 1, {name: target})
    return len(clusters), summary['unknown_atoms']


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--campaign', type=int, required=True, help='PK of a finished cluster campaign')
    parser.add_argument('--cycle', type=int, default=0, help='whose model and density model walk (0: model 0)')
    parser.add_argument('--walks', type=int, default=4)
    parser.add_argument('--steps', type=int, default=200, help="fixed walk length (the demo's)")
    parser.add_argument('--threshold', type=float, default=0.01, help='gate: unknown fraction that ends a walk')
    parser.add_argument('--temperature', type=float, default=300.0)
    parser.add_argument('--max-clusters', type=int, default=6, help="the cycle's cap (the demo's)")
    args = parser.parse_args()

    from aiida_mofal.md.protocol import load_md_settings

    total = time.perf_counter()
    model, density, name, target, settings = campaign_parts(args.campaign, args.cycle)
    rng = np.random.default_rng([settings['initial']['seed'], 99])
    walks = []
    for _ in range(args.walks):
        stage = {'steps': args.steps, 'temperature': args.temperature,
                 'pressure': float(rng.uniform(*settings['explore']['pressure_range']))}  # fmt: skip
        overrides = {**settings['explore']['overrides'], 'seed': int(rng.integers(2**31)), 'schedule': [stage]}
        walks.append(load_md_settings(settings['explore']['protocol'], overrides))
    print(f'campaign {args.campaign} cycle {args.cycle}: target {name} ({len(target)} atoms), {args.walks} walks of '
          f'{args.steps} steps at {args.temperature:g} K, gate at {args.threshold:g} unknown, load average '
          f'{os.getloadavg()[0]:.1f}')  # fmt: skip
    rows = {}
    with tempfile.TemporaryDirectory(prefix='mofal-gate-') as directory:
        directory = Path(directory)
        model_file = model.write(directory / 'model.model')
        density_file = density.write(directory / 'density.npz')
        gate = {'unknown_fraction': args.threshold, 'every': 1, 'feature_model': str(model_file),
                'density_model': str(density_file)}  # fmt: skip
        for label, walk_gate in (('fixed', None), ('gated', gate)):
            results, wall = run_walks(directory / label, model_file, target, walks, walk_gate)
            frames = [frames_of(directory / label, i, target) for i in range(len(walks))]
            steps = sum(int(result['completed_steps']) for result in results)
            capped, unknown = clusters_from(frames, model, density, name, target, settings['extract'],
                                            args.max_clusters)  # fmt: skip
            uncapped, _ = clusters_from(frames, model, density, name, target, settings['extract'], None)
            rows[label] = {'steps': steps, 'wall': wall, 'frames': sum(map(len, frames)), 'unknown': unknown,
                           'capped': capped, 'uncapped': uncapped,
                           'stopped': [(r.get('gate') or {}).get('stopped') for r in results]}  # fmt: skip
    header = (f'{"walks":>6} | {"MD steps":>8} {"wall s":>7} {"frames":>6} {"unknown":>7} | {"clusters":>8} '
              f'{"steps/cluster":>13} | {"uncapped":>8} {"steps/cluster":>13}')  # fmt: skip
    print(header)
    print('-' * len(header))
    for label, row in rows.items():
        per = row['steps'] / row['capped'] if row['capped'] else float('inf')
        per_all = row['steps'] / row['uncapped'] if row['uncapped'] else float('inf')
        print(f'{label:>6} | {row["steps"]:>8} {row["wall"]:>7.1f} {row["frames"]:>6} {row["unknown"]:>7} | '
              f'{row["capped"]:>8} {per:>13.1f} | {row["uncapped"]:>8} {per_all:>13.1f}')  # fmt: skip
    fixed, gated = rows['fixed'], rows['gated']
    print(f'gated walks stopped at steps {[s.get("step") if s else None for s in gated["stopped"]]} '
          f'(None: ran to the end)')  # fmt: skip
    if fixed['capped'] and gated['capped']:
        ratio = (gated['steps'] / gated['capped']) / (fixed['steps'] / fixed['capped'])
        print(f'steps per cluster, gated / fixed (cap {args.max_clusters}): {ratio:.2f}; '
              f'wall time gated / fixed: {gated["wall"] / fixed["wall"]:.2f}')  # fmt: skip
    print(f'Total {time.perf_counter() - total:.0f} s.')


if __name__ == '__main__':
    main()
