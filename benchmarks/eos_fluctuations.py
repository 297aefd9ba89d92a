"""Benchmark: ``mofal.eos`` method ``fluctuations`` on the EMT-copper MACE model, long enough to meet ``ev``.

Run: nice -n 10 .venv/bin/python benchmarks/eos_fluctuations.py [--steps 12000] [--temperature 10] [--threads 1]

One work chain, methods ``ev`` and ``fluctuations``, on the committed tiny MACE model of EMT copper
(``tests/data_files/md/cu_emt_tiny.model``) and its 4-atom cubic cell (``--repeat 2`` for 32 atoms):

* ``ev``: full relaxation, nine fixed-volume relaxations (BFGS to 10⁻³ eV/Å), Birch–Murnaghan → B_ev (0 K);
* ``fluctuations``: one NσT run (triclinic cell, ``--thermostat`` langevin by default: ASE's ``LangevinBAOAB``,
  whose cell is Langevin-thermalised; the MTK cell, started at rest, is thermalised only through its chain and at
  low T would not sample its volume distribution within such a run) → B = k_B T ⟨V⟩/var(V) with a blocked-jackknife
  error, and the elastic tensor's Hill averages.

Printed: both moduli with their errors, the ratio B_fluct/B_ev and its error, the distance in σ, the work chain's
own verdict (``comparison``), the correlation time and independent samples of the volume series, whether the run
was flagged too short (the correlation-time warnings, verbatim), and the wall time per MD step. A throw-away
AiiDA profile (its own AIIDA_PATH) holds everything.
"""

import argparse
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODEL = ROOT / 'tests' / 'data_files' / 'md' / 'cu_emt_tiny.model'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=12000, help='NσT steps (the first 20 %% equilibrate)')
    parser.add_argument('--temperature', type=float, default=10.0, help='K (low: B close to its 0 K value)')
    parser.add_argument('--timestep', type=float, default=5.0, help='fs')
    parser.add_argument('--thermostat', default='langevin', choices=('langevin', 'nose-hoover'))
    parser.add_argument('--pressure-damping', type=float, default=100.0, help='fs (Langevin time of the cell)')
    parser.add_argument('--repeat', type=int, default=1, help='the cubic 4-atom cell repeated n × n × n')
    parser.add_argument('--threads', type=int, default=1, help='torch threads of the jobs')
    args = parser.parse_args()

    os.environ['AIIDA_PATH'] = tempfile.mkdtemp(prefix='mofal-bench-')
    os.environ['OMP_NUM_THREADS'] = str(args.threads)
    import mace  # noqa: F401  (before torch.load)
    from aiida import engine, orm
    from ase.build import bulk

    from aiida_mofal.analysis.eos_methods import production
    from aiida_mofal.analysis.statistics import block_average
    from aiida_mofal.data.mace_model import MaceModelData
    from aiida_mofal.environment.profile import setup
    from aiida_mofal.workchains.eos import EquationOfStateWorkChain

    summary = setup(name='eos-fluct-bench')
    code = orm.load_code(summary['codes']['python-mace'])
    model = MaceModelData(MODEL, trusted=True).store()  # the committed test model
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(args.repeat)
    atoms.rattle(0.02, seed=3)
    settings = {
        'ev': {'fmax': 1e-3, 'optimizer': 'BFGS'},
        'fluctuations': {'temperature': args.temperature, 'steps': args.steps, 'timestep': args.timestep,
                         'thermostat': args.thermostat, 'pressure_damping': args.pressure_damping,
                         'thermo_every': 2, 'dump_every': 4},
    }  # fmt: skip
    options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': args.threads},
               'max_wallclock_seconds': 36000}  # fmt: skip
    print(f'Cu (EMT MACE) {len(atoms)} atoms; NσT {args.steps} steps of {args.timestep} fs at {args.temperature} K, '
          f'{args.thermostat}, pressure damping {args.pressure_damping} fs; torch threads {args.threads}')  # fmt: skip
    builder = EquationOfStateWorkChain.get_builder_for(code, orm.StructureData(ase=atoms), model,
                                                       ['ev', 'fluctuations'], settings, options)  # fmt: skip
    start = time.perf_counter()
    _, node = engine.run_get_node(builder)
    total = time.perf_counter() - start
    print(f'work chain mofal.eos<{node.pk}>: {total:.0f} s wall, exit {node.exit_status} {node.exit_message or ""}')
    ev, fluct = node.outputs.ev, node.outputs.fluctuations
    b_ev, e_ev = ev['B0_GPa'], math.hypot(ev['B0_GPa_err'], ev['form_spread_GPa'])
    b_fl, e_fl = fluct['B0_GPa'], fluct['B0_GPa_err']
    volume = fluct['volume']
    ratio = b_fl / b_ev
    ratio_err = ratio * math.hypot(e_fl / b_fl, e_ev / b_ev)
    print(f'ev (0 K): B0 = {b_ev:.3f} ± {e_ev:.3f} GPa, V0 = {ev["V0_A3"]:.4f} Å³')
    print(f'fluctuations ({args.temperature} K): B = {b_fl:.2f} ± {e_fl:.2f} GPa, ⟨V⟩ = {volume["V_mean_A3"]:.4f} Å³ '
          f'({volume["n_blocks"]} jackknife blocks of {volume["block_length"]} samples)')  # fmt: skip
    elastic = fluct['elastic']
    if elastic:
        print(
            f'  elastic tensor, Hill: B = {elastic["B_hill_GPa"]:.2f} ± {elastic["B_hill_GPa_err"]:.2f} GPa, '
            f'G = {elastic["G_hill_GPa"]:.2f} GPa, E = {elastic["E_hill_GPa"]:.2f} GPa, ν = {elastic["nu_hill"]:.3f}'
        )
    print(f'ratio B_fluct/B_ev = {ratio:.3f} ± {ratio_err:.3f} ({abs(b_fl - b_ev) / math.hypot(e_fl, e_ev):.2f} σ)')
    pair = node.outputs.comparison['pairs'][0]
    print(f'work chain comparison: {"agree" if pair["agree"] else "DISAGREE"} ({pair["sigma"]:.2f} σ)')
    md = next(child for child in node.called if child.process_label == 'MdBaseWorkChain')
    trajectory = md.outputs.walks.walk_0.trajectory
    thermo = trajectory.get_thermo()
    kept = production(thermo['volume'], thermo['step'], 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        average = block_average(kept, name='V')
        squared = block_average((kept - kept.mean()) ** 2, name='(V - <V>)^2')
    for label, stats in (('V', average), ('(V − ⟨V⟩)², what B is a mean of', squared)):
        print(f'{label}: {stats.n_samples} samples, correlation time {stats.correlation_time:.2f} samples '
              f'({stats.correlation_time * 2 * args.timestep:.0f} fs), {stats.n_independent:.0f} independent, '
              f'too short: {stats.too_short}')  # fmt: skip
    flagged = [note for note in fluct['warnings'] if 'independent samples' in note or 'plateau' in note]
    print(f'correlation-time warnings in the result: {len(flagged)}' + ''.join(f'\n  - {n}' for n in flagged))
    others = [note for note in fluct['warnings'] if note not in flagged]
    print(f'other warnings: {len(others)}' + ''.join(f'\n  - {n}' for n in others))
    job = next(child for child in md.called if child.process_label == 'MdCalculation')
    print(
        f'MD job: {(job.mtime - job.ctime).total_seconds():.0f} s wall for {args.steps} steps '
        f'({(job.mtime - job.ctime).total_seconds() / args.steps * 1000:.1f} ms per step, start-up included)'
    )


if __name__ == '__main__':
    main()
