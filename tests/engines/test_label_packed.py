"""``mofal.label`` with ``calculation.pack``: K structures per scheduler job, by itself, with real CP2K (xTB).

The packed jobs (``mofal.cp2k.packed``) must give the labels the one-job-per-label path gives, and a structure a
packed job could not label must go back, alone, under the base work chain and its restarts.
"""

import numpy as np
import pytest
from aiida import engine, orm
from ase.build import molecule

from aiida_mofal.workchains.label import LabelWorkChain

pytestmark = pytest.mark.engine


def _cluster(name: str):
    atoms = molecule(name)
    atoms.info.update(config_type='cluster', charge=0, multiplicity=1)
    return atoms


def test_label_packs_structures_and_free_atoms_into_few_jobs(mofal_codes):
    from aiida_mofal.data import DatasetData
    from tests.conftest import XTB, XTB_NAME, xtb_meta

    stored = DatasetData.from_file(XTB / f'{XTB_NAME}.extxyz').get_atoms()[:2]  # C4H5N, labelled one job each
    frames = [atoms.copy() for atoms in stored]
    for atoms in frames:
        atoms.info = {'config_type': 'cluster', 'charge': 0, 'multiplicity': 1}
        del atoms.arrays['REF_forces']
    overrides = {'calculation': {'pack': 3}}
    builder = LabelWorkChain.get_builder_from_protocol(mofal_codes['cp2k'], frames, protocol='xtb', overrides=overrides)
    results, node = engine.run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    jobs = [c for c in node.called if isinstance(c, orm.CalcJobNode)]
    # 2 molecules + free C, H, N atoms = 5 single points in ceil(5/3) = 2 jobs, no base work chain
    assert [c.process_label for c in jobs] == ['Cp2kPackedCalculation'] * 2
    assert not [c for c in node.called if c.process_label == 'Cp2kBaseWorkChain']
    assert sorted(len(c.inputs.structures.get_atoms()) for c in jobs) == [2, 3]
    dataset = results['dataset']
    assert dataset.count == 2
    # the labels and E0s that the one-job-per-label path stored (tests/data_files/xtb)
    e0s = dataset.isolated_atom_energies
    assert set(e0s) == {'C', 'H', 'N'}
    for symbol, energy in e0s.items():
        assert energy == pytest.approx(xtb_meta()['isolated_atom_energies'][symbol], abs=1e-3)
    for packed, alone in zip(dataset.get_atoms(), stored):
        assert packed.info['REF_energy'] == pytest.approx(alone.info['REF_energy'], abs=1e-3)
        np.testing.assert_allclose(packed.arrays['REF_forces'], alone.arrays['REF_forces'], atol=1e-3)
    # "which job labelled this configuration": the label's creator is one of the packed CalcJobs
    (collect,) = [c for c in node.called if c.process_label == 'collect_labels']
    incoming = collect.base.links.get_incoming().all()
    creators = {link.node.creator.pk for link in incoming if isinstance(link.node, orm.ArrayData)}
    assert creators <= {c.pk for c in jobs} and creators
    from aiida_mofal.campaign.provenance import trace_configuration

    for index in range(2):  # `mofal provenance DATASET:INDEX` names the packed job and the row in its labels node
        label = trace_configuration(dataset, index)['label']
        assert label['cp2k_job']['process'] == 'Cp2kPackedCalculation' and label['cp2k_job']['pk'] in creators
        assert label['position_in_job'] == index and label['structures_in_job'] in (2, 3)
        assert label['energy_ev'] == pytest.approx(dataset.get_atoms()[index].info['REF_energy'], abs=1e-12)


def test_a_structure_the_packed_job_could_not_label_is_resubmitted_alone_with_restarts(mofal_codes):
    overrides = {
        'isolated_atoms': False,
        'calculation': {'pack': 2},
        'cp2k': {'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 1}}}},  # no SCF converges in one step
    }
    builder = LabelWorkChain.get_builder_from_protocol(
        mofal_codes['cp2k'], [_cluster('H2O')], protocol='xtb', overrides=overrides
    )
    results, node = engine.run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    (packed,) = [c for c in node.called if c.process_label == 'Cp2kPackedCalculation']
    assert packed.exit_status == 450 and 'SCF not converged' in packed.outputs.failed.get_dict()['0']
    (base,) = [c for c in node.called if c.process_label == 'Cp2kBaseWorkChain']
    assert [c.exit_status for c in sorted(base.called, key=lambda c: c.ctime)] == [450, 0]  # the SCF handler
    assert results['dataset'].count == 1
