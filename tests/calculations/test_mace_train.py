"""``mofal.mace.train`` before anything runs: the split calcfunction, refusals, and what a dry run writes."""

import json
from pathlib import Path

import pytest
from aiida import engine, orm

from aiida_mofal.calculations.mace_train import MaceTrainCalculation, split_dataset
from aiida_mofal.data import DatasetData, MaceModelData


def _without_e0(dataset, *symbols):
    energies = {k: v for k, v in dataset.isolated_atom_energies.items() if k not in symbols}
    return DatasetData(dataset.get_atoms(), level_of_theory=dataset.level_of_theory, isolated_atom_energies=energies)


def test_missing_e0_is_refused_before_submission(xtb_split, python_code):
    train, validation = xtb_split
    builder = MaceTrainCalculation.get_builder()
    builder.code = python_code
    builder.train = _without_e0(train, 'N', 'O').store()
    builder.validation = validation
    before = orm.QueryBuilder().append(orm.CalcJobNode).count()
    with pytest.raises(ValueError, match=r'no isolated-atom energy \(E0\) for N, O'):
        engine.run(builder)
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == before


def test_split_is_seeded_disjoint_and_recorded(xtb_dataset):
    first = split_dataset(xtb_dataset, orm.Float(0.2), orm.Int(7))
    again = split_dataset(xtb_dataset, orm.Float(0.2), orm.Int(7))
    other = split_dataset(xtb_dataset, orm.Float(0.2), orm.Int(8))
    assert first['train'].count + first['validation'].count == xtb_dataset.count
    assert first['validation'].count == round(0.2 * xtb_dataset.count)
    assert first['validation'].get_text() == again['validation'].get_text()
    assert first['validation'].get_text() != other['validation'].get_text()
    positions = {a.positions.tobytes() for a in first['train'].get_atoms()}
    assert not positions & {a.positions.tobytes() for a in first['validation'].get_atoms()}
    assert first['train'].isolated_atom_energies == xtb_dataset.isolated_atom_energies
    assert first['train'].creator.process_label == 'split_dataset'
    with pytest.raises(ValueError, match='between 0 and 1'):
        split_dataset(xtb_dataset, orm.Float(1.0), orm.Int(7))


def test_dry_run_writes_the_arguments_the_wrapper_and_the_sets(
    xtb_split, python_code, tiny_mace_model_file, tmp_path, monkeypatch
):
    """A dry run (nothing submitted) of a fine-tuning job: the folder holds what the remote needs."""
    monkeypatch.chdir(tmp_path)  # a dry run writes its folder below the working directory
    train, validation = xtb_split
    builder = MaceTrainCalculation.get_builder()
    builder.code = python_code
    builder.train, builder.validation = train, validation
    builder.hyperparameters = orm.Dict({'max_num_epochs': 3, 'start_swa': 2})
    builder.parent_model = MaceModelData(tiny_mace_model_file, trusted=True)
    builder.seed = orm.Int(9)
    builder.metadata.options.max_wallclock_seconds = 1000
    builder.metadata.dry_run = True
    _, node = engine.run_get_node(builder)
    folder = Path(node.dry_run_info['folder'])
    assert {'mace_train.py', 'mace_args.json', 'train.xyz', 'valid.xyz', 'parent.model'} <= {
        path.name for path in folder.iterdir()
    }
    config = json.loads((folder / 'mace_args.json').read_text())
    assert config['deadline_seconds'] == pytest.approx(950.0) and config['status_file'] == 'mofal_status.json'
    assert '--seed=9' in config['argv'] and '--foundation_model=parent.model' in config['argv']
    assert '--max_num_epochs=3' in config['argv'] and '--start_swa=2' in config['argv']
    assert (folder / 'train.xyz').read_text() == train.get_text()
    submit = (folder / '_aiidasubmit.sh').read_text()
    assert "'mace_train.py' 'mace_args.json'  > 'mace.out' 2> 'mace.err'" in submit
