"""Benchmark: what a campaign costs per cycle in the database, the repository and AiiDA overhead.

Runs a campaign file with ``mofal run`` in a subprocess while sampling, every second, the size of the profile's
SQLite database and of its file repository and the number of nodes; cuts the samples at the moments each cycle's
record appears. Then, per cycle: nodes created, database and repository growth, and the fraction of the cycle's
wall time during which no engine was computing (CP2K as it reports its own total time, MACE training as the job
wrapper measured it, MD as the MD script measured it, MACE inference in the campaign's calcfunctions as their
duration, in its ``mofal.mace.evaluate`` jobs as the script measured it) -- the AiiDA overhead, together with
job start-up (Python/torch imports, MPI launch). A last line gives the whole campaign: wall time, processes and
calcfunctions, and the fraction outside the engines.

Run (after ``mofal setup``): AIIDA_PATH=.aiida .venv/bin/python benchmarks/campaign_cost.py examples/campaign_znim2.yaml
"""

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from aiida import load_profile, orm

MOFAL = str(Path(sys.executable).parent / 'mofal')
CP2K_TOTAL = re.compile(r'^\s*CP2K\s+1\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+)\s*$', re.M)
EVALUATE_DONE = re.compile(r'structures done in ([0-9.]+) s')
# MACE inference and density fits in the campaign's own calcfunctions (the GMM fit of features from a job too)
INFERENCE = ('scan_and_extract', 'evaluate_model', 'fit_density_model', 'fit_density_from_features')


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob('*') if f.is_file())


def packed_cp2k_seconds(retrieved) -> float | None:
    """CP2K's own time in a packed job: the FARMING run's total, else the sum of its one-after-another runs."""
    names = retrieved.base.repository.list_object_names()
    if 'farm.out' in names:
        found = CP2K_TOTAL.findall(retrieved.base.repository.get_object_content('farm.out'))
        return float(found[-1]) if found else None
    totals = [CP2K_TOTAL.findall(retrieved.base.repository.get_object_content(name)) for name in names]
    return sum(float(found[-1]) for found in totals if found) or None


def engine_interval(node) -> tuple[float, float] | None:
    """(start, end) in epoch seconds of the engine's own computing inside a process, or None."""
    end = node.mtime.timestamp()
    label = node.process_label
    seconds = None
    if label == 'Cp2kCalculation' and 'retrieved' in node.outputs:
        text = node.outputs.retrieved.base.repository.get_object_content('aiida.out')
        found = CP2K_TOTAL.findall(text)
        seconds = float(found[-1]) if found else None
    elif label == 'Cp2kPackedCalculation' and 'retrieved' in node.outputs:
        seconds = packed_cp2k_seconds(node.outputs.retrieved)
    elif label == 'MaceTrainCalculation' and 'metrics' in node.outputs:
        seconds = node.outputs.metrics.get('elapsed_seconds')
    elif label == 'MdCalculation' and 'result' in node.outputs:
        seconds = node.outputs.result.get('wall_seconds')
    elif label == 'MaceEvaluateCalculation' and 'retrieved' in node.outputs:
        found = EVALUATE_DONE.findall(node.outputs.retrieved.base.repository.get_object_content('aiida.out'))
        seconds = float(found[-1]) if found else None
    elif label in INFERENCE:
        return node.ctime.timestamp(), end
    return None if seconds is None else (end - float(seconds), end)


def union_length(intervals) -> float:
    total, current = 0.0, None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current:
                total += current[1] - current[0]
            current = [start, end]
        else:
            current[1] = max(current[1], end)
    if current:
        total += current[1] - current[0]
    return total


def print_breakdown(campaign, start: float, end: float, intervals) -> None:
    """Split the time outside the engines by what was alive then: a job of some kind, a calcfunction, or neither.

    A 0.1 s grid; a moment inside no engine interval goes to the innermost kind alive (a CalcJob before a
    calcfunction before the work chains), so the rows add up to the time outside the engines.
    """
    step = 0.1
    grid = int((end - start) / step) + 1
    inside = [False] * grid
    for a, b in intervals:
        for i in range(max(0, int((a - start) / step)), min(grid, int((b - start) / step) + 1)):
            inside[i] = True
    owner: list[str | None] = [None] * grid
    rank = {}
    jobs: dict[str, list[float]] = {}
    for node in campaign.called_descendants:
        if isinstance(node, orm.CalcJobNode):
            kind, level = node.process_label, 2
            seconds = engine_interval(node)
            record = jobs.setdefault(kind, [0, 0.0, 0.0])
            record[0] += 1
            record[1] += node.mtime.timestamp() - node.ctime.timestamp()
            record[2] += (seconds[1] - seconds[0]) if seconds else 0.0
        elif isinstance(node, orm.CalcFunctionNode):
            kind, level = f'calcfunction {node.process_label}', 1
        else:
            continue
        a, b = node.ctime.timestamp(), node.mtime.timestamp()
        for i in range(max(0, int((a - start) / step)), min(grid, int((b - start) / step) + 1)):
            if not inside[i] and rank.get(i, 0) < level:
                owner[i], rank[i] = kind, level
    totals: dict[str, float] = {}
    for i in range(grid):
        if not inside[i]:
            name = owner[i] or 'work chains only (or the CLI before the campaign)'
            totals[name] = totals.get(name, 0.0) + step
    print(f'outside the engines, by what was alive ({sum(totals.values()):.0f} s):')
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f'  {seconds:7.1f} s  {name}')
    print(f'{"job":<28} {"count":>5} {"life s":>8} {"engine s":>9} {"other s/job":>12}')
    for kind, (count, life, engine) in sorted(jobs.items()):
        print(f'{kind:<28} {count:5d} {life:8.1f} {engine:9.1f} {(life - engine) / count:12.2f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('campaign_file')
    parser.add_argument('--breakdown', action='store_true', help='also: where the time outside the engines went')
    args = parser.parse_args()
    profile = load_profile()
    storage = profile.storage_config
    folder = Path(storage.get('filepath', ''))
    database = next(folder.glob('*.sqlite'), None) if folder.is_dir() else None
    repository = folder / 'container' if folder.is_dir() else None
    if database is None:
        sys.exit('this benchmark reads the SQLite profile of `mofal setup` (core.sqlite_dos)')

    samples = []
    done = threading.Event()

    def sample():  # plain SQLite reads: the campaign writes from another process
        connection = sqlite3.connect(f'file:{database}?mode=ro', uri=True, timeout=30)
        while not done.is_set():
            nodes = connection.execute('SELECT COUNT(*) FROM db_dbnode').fetchone()[0]
            records = connection.execute(
                "SELECT COUNT(*) FROM db_dbnode WHERE node_type = 'data.core.dict.Dict.' "
                "AND json_extract(attributes, '$.training_configurations') IS NOT NULL"
            ).fetchone()[0]
            samples.append((time.time(), nodes, database.stat().st_size, directory_size(repository), records))
            time.sleep(1.0)
        connection.close()

    thread = threading.Thread(target=sample, daemon=True)
    start_nodes = orm.QueryBuilder().append(orm.Node).count()
    started = time.time()
    thread.start()
    result = subprocess.run(
        [MOFAL, 'run', args.campaign_file, '--json'], capture_output=True, text=True, env=os.environ
    )
    done.set()
    thread.join()
    wall = time.time() - started
    summary = json.loads(result.stdout)
    campaign = orm.load_node(summary['campaign'])
    print(f'campaign {campaign.pk}: exit status {campaign.exit_status}, {wall:.0f} s, {len(samples)} samples')

    # cycle boundaries: the first sample at which each record exists
    boundaries = [started]
    before = samples[0][4]  # records of earlier campaigns in this profile
    for count in range(before + 1, max(s[4] for s in samples) + 1):
        boundaries.append(next(s[0] for s in samples if s[4] >= count))
    boundaries[-1] = max(boundaries[-1], samples[-1][0])
    intervals = [i for node in campaign.called_descendants if (i := engine_interval(node)) is not None]

    print(f'{"cycle":>5} {"wall s":>7} {"nodes":>6} {"DB kB":>7} {"repo kB":>8} {"outside engines":>16}')
    previous = (started, start_nodes, samples[0][2], samples[0][3])
    for cycle, end in enumerate(boundaries[1:]):
        at_end = next(s for s in samples if s[0] >= end)
        t0 = previous[0]
        inside = union_length([(max(a, t0), min(b, end)) for a, b in intervals if b > t0 and a < end])
        span = end - t0
        print(
            f'{cycle:>5} {span:7.0f} {at_end[1] - previous[1]:6d} {(at_end[2] - previous[2]) / 1024:7.0f} '
            f'{(at_end[3] - previous[3]) / 1024:8.0f} {1 - inside / span:16.2f}'
        )
        previous = (end, at_end[1], at_end[2], at_end[3])
    span = boundaries[-1] - started
    inside = union_length([(max(a, started), min(b, boundaries[-1])) for a, b in intervals if b > started])
    calcfunctions = sum(1 for node in campaign.called_descendants if isinstance(node, orm.CalcFunctionNode))
    print(
        f'total {span:.0f} s, {len(campaign.called_descendants)} processes ({calcfunctions} calcfunctions), '
        f'outside the engines {1 - inside / span:.3f}'
    )
    if args.breakdown:
        print_breakdown(campaign, started, boundaries[-1], intervals)


if __name__ == '__main__':
    main()
