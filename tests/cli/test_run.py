"""`mofal run` refuses a campaign that cannot run before anything is stored: typo, missing code, bad element.

Each check lives in the library (``campaign.config``, ``ClusterCampaignWorkChain.get_builder_from_protocol``,
tested in ``tests/campaign`` and ``tests/workchains``); here the command shows it with the file's line.
"""

from pathlib import Path

import pytest
import yaml
from aiida import orm
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root

ROOT = Path(__file__).resolve().parents[2]


def mofal_run(config: dict, folder: Path):
    path = folder / 'campaign.yaml'
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    before = orm.QueryBuilder().append(orm.Node).count()
    result = CliRunner().invoke(cmd_root, ['run', str(path)])
    assert orm.QueryBuilder().append(orm.Node).count() == before  # nothing stored, nothing submitted
    return result


@pytest.fixture
def config(mofal_codes):
    data = yaml.safe_load((ROOT / 'examples' / 'campaign_znim2.yaml').read_text())
    data['targets'][0]['structure'] = str(ROOT / 'tests' / 'data_files' / 'structures' / 'ZnIm2-sod_Lewis2009.cif')
    return data


def test_typo_is_refused_with_its_line(config, tmp_path):
    config['stop']['max_cycle'] = config['stop'].pop('max_cycles')
    result = mofal_run(config, tmp_path)
    line = next(
        i for i, row in enumerate((tmp_path / 'campaign.yaml').read_text().splitlines(), 1) if 'max_cycle:' in row
    )
    assert result.exit_code != 0
    assert f"campaign.yaml:{line}: stop.max_cycle: unknown key (did you mean 'max_cycles'?)" in result.output


def test_missing_code_is_refused(config, tmp_path):
    config['resources']['cp2k']['code'] = 'cp2k@cluster'
    result = mofal_run(config, tmp_path)
    assert result.exit_code != 0 and "resources.cp2k.code: no code 'cp2k@cluster'" in result.output


def test_an_element_the_label_protocol_cannot_do_is_refused(config, tmp_path):
    from ase.io import read, write

    atoms = read(config['targets'][0]['structure'])
    atoms.symbols[atoms.numbers == 30] = 'U'  # GFN1-xTB stops at Rn
    write(tmp_path / 'uranium.cif', atoms)
    config['targets'][0]['structure'] = str(tmp_path / 'uranium.cif')
    result = mofal_run(config, tmp_path)
    assert result.exit_code != 0 and 'GFN1-xTB has no parameters for U' in result.output


def test_bad_protocol_overrides_and_an_unknown_protocol_are_refused(config, tmp_path):
    config['train']['overrides'] = {'hyperparameters': {'num_chanels': 32}}
    result = mofal_run(config, tmp_path)
    assert result.exit_code != 0 and 'train:' in result.output and 'num_chanels' in result.output
    config['train']['overrides'] = {}
    config['density'] = {'settings': {'max_component': 4}}
    result = mofal_run(config, tmp_path)
    assert result.exit_code != 0 and 'density.settings' in result.output and 'max_component' in result.output
    config['density'] = {}
    result = mofal_run({**config, 'protocol': 'papr'}, tmp_path)
    assert result.exit_code != 0 and "unknown campaign protocol 'papr'" in result.output
