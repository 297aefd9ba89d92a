"""Packed labels through CP2K's FARMING: one CP2K process per job runs the K inputs, with real CP2K (xTB).

``mofal.cp2k.packed`` with ``calculation.farm`` (the default) must give, per structure, the labels the
one-``cp2k``-per-structure mode gives; and when one structure makes the farm abort, the label work chain must
rerun the unfinished structures alone.
"""

import numpy as np
import pytest
from aiida import engine, orm

from aiida_mofal.calculations.cp2k_packed import Cp2kPackedCalculation
from aiida_mofal.calculations.labels import label_rows
from aiida_mofal.data import DatasetData
from aiida_mofal.workchains.label import LabelWorkChain, label_settings

pytestmark = pytest.mark.engine


def _molecules(count: int, labelled: bool = False):
    from tests.conftest import XTB, XTB_NAME

    stored = DatasetData.from_file(XTB / f'{XTB_NAME}.extxyz').get_atoms()[:count]  # labelled one job each
    if labelled:
        return stored
    frames = [atoms.copy() for atoms in stored]
    for atoms in frames:
        atoms.info = {'config_type': 'cluster', 'charge': 0, 'multiplicity': 1}
        del atoms.arrays['REF_forces']
    return frames


def _packed(code, frames, farm: bool):
    builder = Cp2kPackedCalculation.get_builder()
    builder.code = code
    builder.structures = DatasetData(frames)
    builder.settings = orm.Dict(label_settings('xtb', {'calculation': {'farm': farm}}))
    builder.metadata.options.max_wallclock_seconds = 600
    return engine.run_get_node(builder)


def test_one_cp2k_process_labels_every_structure_as_separate_runs_do(mofal_codes):
    frames, stored = _molecules(3), _molecules(3, labelled=True)
    farmed, calc = _packed(mofal_codes['cp2k'], frames, farm=True)
    assert calc.is_finished_ok, calc.exit_message
    script = calc.base.repository.get_object_content('_aiidasubmit.sh')
    assert script.count('cp2k.psmp') == 1 and "'-i' 'farm.inp'" in script  # one CP2K process for the 3
    farm = calc.outputs.retrieved.base.repository.get_object_content('farm.out')
    assert 'FARMING| Number of jobs found                                                 3' in farm
    assert all(f'Done, output in frame_{i:04d}.out' in farm for i in range(3))
    rows = label_rows(farmed['labels'])
    assert sorted(rows) == [0, 1, 2] and 'failed' not in farmed
    assert farmed['labels'].creator.uuid == calc.uuid  # the one label node of the job, made by this one job
    separate, calc_separate = _packed(mofal_codes['cp2k'], frames, farm=False)
    assert calc_separate.is_finished_ok, calc_separate.exit_message
    assert calc_separate.base.repository.get_object_content('_aiidasubmit.sh').count('cp2k.psmp') == 3
    rows_separate = label_rows(separate['labels'])
    for index, atoms in enumerate(stored):
        energy = rows[index]['energy']
        assert energy == pytest.approx(rows_separate[index]['energy'], abs=1e-6)
        assert energy == pytest.approx(atoms.info['REF_energy'], abs=1e-3)  # the stored one-job-each label
        np.testing.assert_allclose(rows[index]['forces'], atoms.arrays['REF_forces'], atol=1e-3)


def test_when_one_structure_aborts_the_farm_the_unfinished_ones_rerun_alone(mofal_codes, monkeypatch):
    """Structure 1's input holds a keyword CP2K refuses (a CPABORT that ends the whole farm process)."""
    from aiida_mofal.calculations import cp2k_packed

    written = cp2k_packed.packed_inputs

    def one_bad_input(frames, settings):
        files = written(frames, settings)
        files['frame_0001.inp'] = files['frame_0001.inp'].replace('&QS\n', '&QS\n         NO_SUCH_KEYWORD 1\n', 1)
        return files

    monkeypatch.setattr(cp2k_packed, 'packed_inputs', one_bad_input)  # packed jobs only: single jobs are fine
    overrides = {'isolated_atoms': False, 'calculation': {'pack': 3}}
    builder = LabelWorkChain.get_builder_from_protocol(
        mofal_codes['cp2k'], _molecules(3), protocol='xtb', overrides=overrides
    )
    results, node = engine.run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    (packed,) = [c for c in node.called if c.process_label == 'Cp2kPackedCalculation']
    assert packed.is_finished_ok and list(label_rows(packed.outputs.labels)) == [0]
    failed = packed.outputs.failed.get_dict()
    assert failed['1'].startswith('CP2K aborted') and 'NO_SUCH_KEYWORD' in failed['1']
    assert failed['2'].startswith('no output (the CP2K farm ended before this structure ran; frame_0001')
    alone = [c for c in node.called if c.process_label == 'Cp2kBaseWorkChain']
    assert sorted(c.inputs.cp2k.structure.get_ase().get_chemical_formula() for c in alone) == sorted(
        atoms.get_chemical_formula() for atoms in _molecules(3)[1:]
    )
    assert all(c.is_finished_ok for c in alone)
    assert results['dataset'].count == 3
    energies = sorted(atoms.info['REF_energy'] for atoms in results['dataset'].get_atoms())
    expected = sorted(atoms.info['REF_energy'] for atoms in _molecules(3, labelled=True))
    np.testing.assert_allclose(energies, expected, atol=1e-3)


def test_two_farming_groups_share_the_job_and_give_the_same_labels(mofal_codes):
    """``farm_groups: 2`` on 2 MPI processes: NGROUPS 2, two structures at once, the one-group energies."""
    frames, stored = _molecules(3), _molecules(3, labelled=True)
    builder = Cp2kPackedCalculation.get_builder()
    builder.code = mofal_codes['cp2k']
    builder.structures = DatasetData(frames)
    builder.settings = orm.Dict(label_settings('xtb', {'calculation': {'farm_groups': 2}}))
    builder.metadata.options.resources = {'num_machines': 1, 'num_mpiprocs_per_machine': 2}
    builder.metadata.options.max_wallclock_seconds = 600
    results, calc = engine.run_get_node(builder)
    assert calc.is_finished_ok, calc.exit_message
    assert 'NGROUPS 2' in calc.base.repository.get_object_content('farm.inp')
    farm = calc.outputs.retrieved.base.repository.get_object_content('farm.out')
    assert 'Number of created MPI (slave) groups:                                2' in farm
    for index, atoms in enumerate(stored):
        energy = label_rows(results['labels'])[index]['energy']
        assert energy == pytest.approx(atoms.info['REF_energy'], abs=1e-3)
