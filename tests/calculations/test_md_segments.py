"""join_trajectories: the segments of a restarted walk become one trajectory with one integrity record."""

import numpy as np
from aiida import orm
from ase.build import molecule

from aiida_mofal.calculations.md_segments import join_trajectories
from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.md.protocol import load_md_settings


def test_join_shifts_segments_orders_them_and_flags_a_broken_bond(aiida_profile):
    """Two segments (given in the wrong order, under any names) become one; a C-H pulled apart fails the policy."""
    methane = molecule('CH4')
    methane.center(vacuum=4.0)
    methane.pbc = True
    start = methane.positions

    def segment(frames, pulled, completed):
        positions = np.repeat(start[None], frames, axis=0)
        if pulled:
            positions[-1, 1] += (positions[-1, 1] - positions[-1, 0]) * 1.5  # H1 2.5x further from C
        arrays = {'steps': np.arange(frames) * 5, 'times': np.arange(frames) * 2.5, 'positions': positions,
                  'cells': np.repeat(methane.cell.array[None], frames, axis=0)}  # fmt: skip
        node = MdTrajectoryData(arrays, numbers=methane.numbers, engine='lammps-reaxff', timestep=0.5)
        node.base.attributes.set_many({'completed_steps': completed, 'completed_time': completed * 0.5, 'walk': 4})
        return node.store()

    def charges(frames):
        return orm.ArrayData({'steps': np.arange(frames) * 5, 'charges': np.full((frames, 5), float(frames))}).store()

    first, first_charges = segment(3, False, 10), charges(3)
    second, second_charges = segment(4, True, 15), charges(4)
    structure = orm.StructureData(ase=methane).store()
    settings = orm.Dict(load_md_settings('melt_quench')).store()
    result = join_trajectories(structure=structure, settings=settings, b=second, a=second_charges, z=first,
                               y=first_charges)  # fmt: skip
    joined, record = result['trajectory'], result['integrity']
    assert joined.get_array('steps').tolist() == [0, 5, 10, 15, 20, 25]  # the repeated restart frame is dropped
    assert joined.get_array('times').tolist() == [0.0, 2.5, 5.0, 7.5, 10.0, 12.5]
    assert joined.base.attributes.get('completed_steps') == 25 and joined.base.attributes.get('segments') == 2
    assert joined.base.attributes.get('walk') == 4  # the walk's index travels with it
    assert result['charges'].get_array('steps').tolist() == [0, 5, 10, 15, 20, 25]
    assert result['charges'].get_array('charges')[:, 0].tolist() == [3, 3, 3, 4, 4, 4]
    assert record['n_broken'] == [0, 0, 0, 0, 0, 1]
    assert record['failed'] and 'frame 5' in record['failure_reason']
