"""The ``mofal.cp2k.packed`` parser: one label per converged structure, each failure named by its index."""

import numpy as np
from aiida import orm
from ase.io import read

from aiida_mofal.calculations.labels import label_rows
from aiida_mofal.calculations.parsers.cp2k_packed import Cp2kPackedParser
from aiida_mofal.data import DatasetData
from tests.conftest import PARSER_FIXTURES

FIXTURES = PARSER_FIXTURES / 'cp2k'


def test_converged_failed_and_missing_structures_of_one_job(generate_calc_job_node):
    cluster = read(FIXTURES / 'cluster' / 'structure.extxyz')
    failing = read(FIXTURES / 'scf_not_converged' / 'structure.extxyz')
    structures = DatasetData([cluster, failing, cluster])
    node = generate_calc_job_node(
        'mofal.cp2k.packed',
        inputs={'structures': structures, 'settings': orm.Dict({})},
        retrieved={
            'frame_0000.out': (FIXTURES / 'cluster' / 'aiida.out').read_text(),
            'frame_0001.out': (FIXTURES / 'scf_not_converged' / 'aiida.out').read_text(),
        },  # frame_0002 never ran: the job ended first
    )
    results, calcfunction = Cp2kPackedParser.parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == 0
    assert results['labels'].get_array('index').tolist() == [0]  # one node for the job, row 0 is structure 0
    assert results['failed'].get_dict() == {
        '1': 'SCF not converged',
        '2': 'no output (the job ended before this structure ran)',
    }
    forces = label_rows(results['labels'])[0]['forces']
    assert forces.shape == (len(cluster), 3) and np.isfinite(forces).all()


def test_no_label_at_all_is_a_failed_job(generate_calc_job_node):
    failing = read(FIXTURES / 'scf_not_converged' / 'structure.extxyz')
    node = generate_calc_job_node(
        'mofal.cp2k.packed',
        inputs={'structures': DatasetData([failing]), 'settings': orm.Dict({})},
        retrieved={'frame_0000.out': (FIXTURES / 'scf_not_converged' / 'aiida.out').read_text()},
    )
    _, calcfunction = Cp2kPackedParser.parse_from_node(node, store_provenance=False)
    assert calcfunction.exit_status == 450
    assert 'SCF not converged' in calcfunction.exit_message
