"""A real CP2K single point through AiiDA: H2O with GFN1-xTB on the localhost computer (about 3 s).

    python examples/cp2k_smoke.py             # run in this process (no daemon needed)
    python examples/cp2k_smoke.py --daemon    # submit to the daemon and wait for it

Prints the calculation's PK, exit status and energy; exits non-zero when CP2K did not finish cleanly.
"""

import argparse
import sys
import time

from aiida import engine, load_profile, orm
from aiida.plugins import CalculationFactory
from ase.build import molecule

XTB_WATER = {
    'GLOBAL': {'RUN_TYPE': 'ENERGY_FORCE', 'PRINT_LEVEL': 'MEDIUM'},
    'FORCE_EVAL': {
        'METHOD': 'QS',
        'DFT': {
            'CHARGE': 0,
            'MULTIPLICITY': 1,
            'QS': {'METHOD': 'xTB', 'XTB': {'DO_EWALD': False, 'CHECK_ATOMIC_CHARGES': False}},
            'POISSON': {'PERIODIC': 'NONE', 'POISSON_SOLVER': 'ANALYTIC'},
            'SCF': {'SCF_GUESS': 'MOPAC', 'EPS_SCF': 1e-8, 'MAX_SCF': 100},
        },
        'SUBSYS': {'CELL': {'PERIODIC': 'NONE'}},
        'PRINT': {'FORCES': {'_': 'ON'}},
    },
}


def build(code: orm.Code):
    """Return a ``Cp2kCalculation`` builder for a water molecule in an 8 Å box."""
    atoms = molecule('H2O')
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    builder = CalculationFactory('cp2k').get_builder()
    builder.code = code
    builder.structure = orm.StructureData(ase=atoms)
    builder.parameters = orm.Dict(XTB_WATER)
    builder.metadata.options.resources = {'num_machines': 1, 'num_mpiprocs_per_machine': 2}
    builder.metadata.options.max_wallclock_seconds = 600
    builder.metadata.label = 'cp2k-smoke-h2o-xtb'
    return builder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--daemon', action='store_true', help='submit to the daemon and wait')
    parser.add_argument('--code', default='cp2k@localhost')
    parser.add_argument('--profile', default=None)
    args = parser.parse_args()
    load_profile(args.profile)
    builder = build(orm.load_code(args.code))
    if args.daemon:
        node = engine.submit(builder)
        while not node.is_terminated:
            time.sleep(1)
    else:
        _, node = engine.run_get_node(builder)
    energy = node.outputs.output_parameters['energy'] if 'output_parameters' in node.outputs else None
    print(f'CP2K smoke calculation pk={node.pk} exit_status={node.exit_status} energy={energy} Hartree')
    return 0 if node.is_finished_ok else 1


if __name__ == '__main__':
    sys.exit(main())
