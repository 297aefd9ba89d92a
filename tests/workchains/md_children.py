"""A work chain instance and a fake finished ``mofal.md`` child, to test each handler alone.

As aiida-quantumespresso's ``generate_workchain_pw``: the process is instantiated (not run), its ``setup`` is
called, and ``ctx.children`` holds a stored CalcJobNode with an exit status and the outputs the handler reads.
"""

import numpy as np
from aiida import orm
from aiida.common import LinkType
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from aiida.plugins import DataFactory
from plumpy import ProcessState


def instantiate(builder):
    """Return the process of ``builder`` after its ``setup`` (no job is run)."""
    process = instantiate_process(get_manager().get_runner(), builder)
    process.setup()
    return process


def segment(completed: int, frames: int = 3, atoms: int = 32) -> orm.Data:
    """A trajectory of a walk that got ``completed`` steps far (unstored)."""
    trajectory_class = DataFactory('mofal.trajectory')
    steps = np.linspace(0, completed, frames).astype(int)
    arrays = {'steps': steps, 'times': steps * 1.0, 'positions': np.zeros((frames, atoms, 3)),
              'cells': np.repeat(np.eye(3)[None] * 7.2, frames, axis=0)}  # fmt: skip
    node = trajectory_class(arrays, numbers=np.full(atoms, 29), engine='ase', timestep=1.0)
    node.base.attributes.set_many({'completed_steps': completed, 'completed_time': float(completed)})
    return node


def restart_file() -> orm.SinglefileData:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, step=0)
    buffer.seek(0)
    return orm.SinglefileData(buffer, filename='restart.npz')


def attach_child(process, computer, exit_code, walks: list[dict]) -> orm.CalcJobNode:
    """Give ``process`` one finished child with ``exit_code`` whose walks ended as ``walks`` says.

    ``walks``: per walk ``status`` and ``completed`` steps (and ``name`` for a job with several walks); a walk with
    steps done gets a trajectory and a restart state.
    """
    node = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:mofal.md')
    node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_code.status)
    node.store()
    results = []
    for index, walk in enumerate(walks):
        results.append({'index': walk.get('index', index), 'status': walk['status'], 'message': walk['status'],
                        'completed_steps': walk['completed']})  # fmt: skip
        prefix = f'walks__{walk["name"]}__' if 'name' in walk else ''
        if walk['completed']:
            for label, output in (('trajectory', segment(walk['completed'])), ('restart', restart_file())):
                output.base.links.add_incoming(node, LinkType.CREATE, prefix + label)
                output.store()
    result = orm.Dict({'walks': results})
    result.base.links.add_incoming(node, LinkType.CREATE, 'result')
    result.store()
    process.ctx.children = [node]
    process.ctx.iteration = 1
    return node
