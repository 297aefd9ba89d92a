"""`mofal melt-quench` refuses what cannot give a glass before anything is stored: units, network, elements."""

import pytest
from aiida import orm
from ase.build import bulk
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root
from tests.engines.md_driver import MODEL
from tests.structure_files import DATA

ZIF = str(DATA / 'ZnIm2-sod_Lewis2009.cif')


def refused(arguments: list[str]) -> str:
    before = orm.QueryBuilder().append(orm.Node).count()
    result = CliRunner().invoke(cmd_root, ['melt-quench', *arguments])
    assert result.exit_code != 0, result.output
    assert orm.QueryBuilder().append(orm.Node).count() == before  # nothing stored, nothing submitted
    return result.output


@pytest.mark.parametrize(
    ('arguments', 'message'),
    [
        ([ZIF, '--reaxff', '--override', 'max_temperature=15000'], 'Is the value in the wrong units?'),
        ([ZIF, '--reaxff', '--override', 'rate=0.02'], 'rate is in K/ps'),
        ([ZIF, '--reaxff', '--override', 'plateu=100'], "Did you mean 'plateau'?"),
        ([ZIF, '--reaxff', '--model', str(MODEL)], 'give --model (MACE) or --reaxff (ReaxFF), one of them'),
        ([ZIF, '--model', str(MODEL), '--trust-model-file'], 'contains C, H, N, Zn, which MACE model'),
    ],
)
def test_bad_input_is_refused(mofal_codes, arguments, message):
    assert message in ' '.join(refused(arguments).split())


def test_a_structure_without_zn_n_pairs_is_refused(mofal_codes, tmp_path):
    path = tmp_path / 'cu.cif'
    bulk('Cu', 'fcc', a=3.6, cubic=True).write(path)
    output = ' '.join(refused([str(path), '--reaxff']).split())
    assert 'has no Zn and no N: this melt-quench protocol is for Zn-N networks (ZIFs)' in output
