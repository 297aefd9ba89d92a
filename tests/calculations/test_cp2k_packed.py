"""``mofal.cp2k.packed`` inputs, by a dry run: the FARMING groups never outnumber the job's MPI processes."""

from pathlib import Path

import pytest
from aiida import engine, orm

from aiida_mofal.calculations.cp2k_packed import Cp2kPackedCalculation
from aiida_mofal.data import DatasetData
from aiida_mofal.workchains.label import label_settings
from tests.engines.test_label_farm import _molecules


@pytest.mark.parametrize(('processes', 'groups'), [(2, 2), (1, 1), (None, 2)])
def test_farm_groups_are_capped_at_the_mpi_processes(mofal_codes, processes, groups, tmp_path, monkeypatch):
    """``farm_groups: 2`` on 1 process makes FARMING abort: the job gets NGROUPS 1 (localhost: 2+ cores)."""
    monkeypatch.chdir(tmp_path)  # a dry run writes submit_test/ here
    builder = Cp2kPackedCalculation.get_builder()
    builder.code = mofal_codes['cp2k']
    builder.structures = DatasetData(_molecules(3))
    builder.settings = orm.Dict(label_settings('xtb', {'calculation': {'farm_groups': 2}}))
    per_machine = {} if processes is None else {'num_mpiprocs_per_machine': processes}  # None: localhost's default
    builder.metadata.options.resources = {'num_machines': 1, **per_machine}
    builder.metadata.dry_run = True
    builder.metadata.store_provenance = False
    _, node = engine.run_get_node(builder)
    folder = Path(node.dry_run_info['folder'])
    assert f'NGROUPS {groups}\n' in (folder / 'farm.inp').read_text()
