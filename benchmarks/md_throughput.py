"""Benchmark: MD throughput (atom-steps per second) of ``lammps-python`` against ``ase``, same MACE model, ZIF-4 2×2×2.

Run: .venv/bin/python benchmarks/md_throughput.py [--steps 5] [--threads 2] [--device cpu|cuda] [--model FILE]
[--reaxff]

The system is the melt-quench paper's: the ZIF-4 crystal (tests/data_files/structures/ZIF-4_Lewis2009.cif, 272 atoms)
repeated 2×2×2, 2176 atoms. Each engine runs one ``mofal.md`` job (NVT, 0.5 fs, 1500 K: the melt's plateau) through
``run_get_node`` on localhost, with the model's TorchScript archive as ``MdBaseWorkChain`` jobs get it; the MD loop
time is what the driver measured (no start-up, no parsing), so the figure is the engine's own. ``--reaxff`` adds the
ReaxFF baseline (``lammps-reaxff``, the shipped ZIF force field) as a third row.

The default model is random (H, C, N, Zn; ``tests/mlp/mace_models.py``: 16x0e+16x1o, two layers, r_max 5 Å, float64;
torch cannot script its equivariant gate, so the jobs load it with mace-torch, as ``MdBaseWorkChain`` would),
so the figure is a lower bound of the cost of nothing: a production MACE model (128 channels, float32 on a GPU) does
more work per atom. The last lines turn the rates into the cost of the paper's melt-quench (580,000 steps of 2176
atoms) and compare with the rate the paper reports for NequIP on a V100 (272 atoms, 100 ps in about 5 h).
Everything runs in a throw-away AiiDA profile (its own AIIDA_PATH).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CIF = ROOT / 'tests' / 'data_files' / 'structures' / 'ZIF-4_Lewis2009.cif'
FORCE_FIELDS = ROOT / 'tests' / 'data_files' / 'forcefields'
PAPER_STEPS = 580_000
PAPER_NEQUIP_V100 = 272 * 200_000 / (5 * 3600.0)  # atom-steps/s: a 272-atom, 100 ps NVT run in about 5 h


def zif4_supercell():
    import warnings

    import ase.io

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return ase.io.read(CIF).repeat((2, 2, 2))


def run_job(code, atoms, steps: int, engine: str, threads: int, device: str, **potential) -> dict:
    """Run one ``mofal.md`` job of ``steps`` NVT steps; return the driver's timings."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mofal.calculations.md import MdCalculation
    from aiida_mofal.md.protocol import load_md_settings

    settings = load_md_settings(
        'nvt', {'timestep': 0.5, 'dump_every': steps, 'schedule': [{'steps': steps, 'temperature': 1500.0}]}
    )
    resources = {'num_machines': 1, 'num_mpiprocs_per_machine': 1, 'num_cores_per_mpiproc': threads}
    extra = {} if engine == 'lammps-reaxff' else {'device': orm.Str(device)}
    start = time.perf_counter()
    _, node = run_get_node(
        MdCalculation, code=code, structure=orm.StructureData(ase=atoms), settings=orm.Dict(settings),
        engine=orm.Str(engine), metadata={'options': {'resources': resources}}, **extra, **potential,
    )  # fmt: skip
    total = time.perf_counter() - start
    if not node.is_finished_ok:
        raise RuntimeError(f'{engine}: MdCalculation<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
    result = node.outputs.result.get_dict()
    loop = result['walks'][0]['loop_seconds']
    return {'total': total, 'loop': loop, 'setup': result.get('setup_seconds', 0.0), 'steps': steps}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--steps', type=int, default=5, help='MD steps per engine (after the first force call)')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='torch threads in the jobs')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--model', type=Path, help='a MACE .model with H, C, N, Zn (default: a random one)')
    parser.add_argument('--engines', default='lammps-python,ase')
    parser.add_argument('--reaxff', action='store_true', help='add the ReaxFF baseline (lammps-reaxff)')
    args = parser.parse_args()

    os.environ['AIIDA_PATH'] = tempfile.mkdtemp(prefix='mofal-bench-')
    os.environ['OMP_NUM_THREADS'] = str(args.threads)
    import mace  # noqa: F401  (before torch.load)
    from aiida import orm

    from aiida_mofal.calculations import reaxff
    from aiida_mofal.calculations.torchscript import get_torchscript_model
    from aiida_mofal.data.mace_model import MaceModelData
    from aiida_mofal.environment import setup

    summary = setup(name='md-throughput')
    code = orm.load_code(summary['codes']['python-mace'])
    model_path = args.model
    if model_path is None:
        import sys

        sys.path.insert(0, str(ROOT))
        from tests.mlp.mace_models import build_mace_model

        model_path = build_mace_model(Path(os.environ['AIIDA_PATH']) / 'zif.model', atomic_numbers=(1, 6, 7, 30))
    model = MaceModelData(model_path, trusted=True).store()  # a file made here, or one you pass and trust
    start = time.perf_counter()
    compiled, why = get_torchscript_model(model)
    if compiled is not None:
        potential = {'model': model, 'compiled_model': compiled}
        print(f'TorchScript archive: {time.perf_counter() - start:.1f} s (once per model)')
    else:  # as MdBaseWorkChain: a model torch cannot script runs eager
        potential = {'model': model}
        print(f'{why[:100]}: the jobs load the model with mace-torch')
    atoms = zif4_supercell()
    n_atoms = len(atoms)
    print(f'ZIF-4 2x2x2: {n_atoms} atoms; model {model_path.name} ({model.base.attributes.get("dtype")}, '
          f'{model.base.attributes.get("num_channels")} channels, r_max {model.r_max} A); {args.steps} steps of '
          f'0.5 fs at 1500 K; {args.threads} thread(s), device {args.device}')  # fmt: skip
    rows = {}
    for engine in args.engines.split(','):
        rows[engine] = run_job(code, atoms, args.steps, engine, args.threads, args.device, **potential)
    if args.reaxff:
        rows['lammps-reaxff'] = run_job(
            code, atoms, args.steps, 'lammps-reaxff', args.threads, args.device,
            force_field=reaxff.force_field(FORCE_FIELDS / 'ffield_ZnN_2016.reax'),
            control=reaxff.control_file(FORCE_FIELDS / 'lmp_control.reax'),
        )  # fmt: skip
    baseline = rows.get('ase')
    print(f'\n{"engine":<15} {"loop s":>8} {"s/step":>8} {"atom-steps/s":>13} {"vs ase":>7} {"job s":>7} '
          f'{"paper melt-quench":>18}')  # fmt: skip
    for engine, row in rows.items():
        rate = n_atoms * row['steps'] / row['loop']
        ratio = f'{baseline["loop"] / row["loop"]:.2f}' if baseline else '-'
        hours = n_atoms * PAPER_STEPS / rate / 3600.0
        print(f'{engine:<15} {row["loop"]:>8.2f} {row["loop"] / row["steps"]:>8.3f} {rate:>13.0f} {ratio:>7} '
              f'{row["total"]:>7.1f} {hours:>16.0f} h')  # fmt: skip
    hours = n_atoms * PAPER_STEPS / PAPER_NEQUIP_V100 / 3600.0
    print(f'{"paper: NequIP":<15} {"":>8} {"":>8} {PAPER_NEQUIP_V100:>13.0f} {"":>7} {"":>7} {hours:>16.0f} h'
          '   (V100, 272 atoms, 100 ps in ~5 h)')  # fmt: skip


if __name__ == '__main__':
    main()
