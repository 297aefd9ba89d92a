"""A ``mofal.md`` CalcJobNode made from a stored fixture (``tests/parsers/fixtures/{md,reaxff}/<case>/``)."""

import json
from pathlib import Path

from aiida import orm
from aiida.common import LinkType
from ase import Atoms

FIXTURES = Path(__file__).resolve().parent / 'fixtures'


def fixture(case: str) -> tuple[Path, dict, dict]:
    """Return the directory, inputs and expectations of a fixture case (``md/ase_finished``, ...)."""
    directory = FIXTURES / case
    return (
        directory,
        json.loads((directory / 'inputs.json').read_text()),
        json.loads((directory / 'expected.json').read_text()),
    )


def calc_job_node(computer: orm.Computer, case: str) -> tuple[orm.CalcJobNode, Path]:
    """Return a stored CalcJobNode with the fixture's inputs and retrieved files, and its retrieved temporary folder."""
    directory, inputs, _ = fixture(case)
    node = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:mofal.md')
    node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    links = {'engine': orm.Str(inputs['engine'])}
    for walk in inputs['walks']:
        structure = walk['structure']
        atoms = Atoms(
            numbers=structure['numbers'], positions=structure['positions'], cell=structure['cell'], pbc=structure['pbc']
        )
        ports = {'structure': orm.StructureData(ase=atoms)}
        if walk['settings'] is not None:
            ports['settings'] = orm.Dict(walk['settings'])
        if walk['name'] is None:
            links.update(ports)
        else:
            ports['index'] = orm.Int(walk['index'])
            links.update({f'walks__{walk["name"]}__{key}': value for key, value in ports.items()})
    for label, value in links.items():
        node.base.links.add_incoming(value.store(), LinkType.INPUT_CALC, label)
    node.store()
    retrieved = orm.FolderData()
    for name in ('md_result.json', 'md.err'):
        if (directory / name).is_file():  # a case may lack the result (a job that died before writing it)
            retrieved.base.repository.put_object_from_file(str(directory / name), name)
    retrieved.base.links.add_incoming(node, LinkType.CREATE, 'retrieved')
    retrieved.store()
    return node, directory
