"""Issue 18's hostile-input probe as one table: each case is a command a new user could type, run for real through
the CLI, and must end in one clear message (exit status not 0, no traceback), store no node and write no file.

The table in docs/guide/security.md ("The probe") is this list; the classes are the issue's. Cases that need a
running engine (a crashing CP2K, Ctrl-C mid-label, a bad frame in a campaign) are tested where that engine runs:
tests/workchains/test_cp2k_base.py, tests/cli/test_foreground.py, tests/campaign/test_bad_items.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_mofal.cli import cmd_root

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / 'examples' / 'campaign_znim2.yaml'
CIF = ROOT / 'tests' / 'data_files' / 'structures' / 'ZnIm2-sod_Lewis2009.cif'
EXAMPLE_CIF = '../tests/data_files/structures/ZnIm2-sod_Lewis2009.cif'


def _campaign(old: str, new: str):
    """A campaign file: the README's example with ``old`` replaced by ``new`` (which must be there)."""

    def write(folder: Path) -> list[str]:
        text = EXAMPLE.read_text().replace(EXAMPLE_CIF, 'znim2.cif')
        assert old in text, old
        (folder / 'campaign.yaml').write_text(text.replace(old, new, 1))
        return ['run', 'campaign.yaml']

    return write


def _train(overrides: str):
    return _campaign('  fine_tune: true', f'  fine_tune: true\n  overrides: {overrides}')


def _label(protocol: str, overrides: str):
    label = EXAMPLE.read_text().split('\nlabel:\n', 1)[1].split('\ntrain:', 1)[0]  # the example's own, replaced whole
    return _campaign(f'\nlabel:\n{label}\n', f'\nlabel:\n  protocol: {protocol}\n  overrides: {overrides}\n')


def _alias_bomb(folder: Path) -> list[str]:
    rows = ['l0: &l0 [x, x, x, x, x, x, x, x, x, x]']
    rows += [f'l{i}: &l{i} [' + ', '.join([f'*l{i - 1}'] * 10) + ']' for i in range(1, 9)]
    text = EXAMPLE.read_text().replace(EXAMPLE_CIF, 'znim2.cif')
    (folder / 'campaign.yaml').write_text('\n'.join(rows) + '\n' + text)
    return ['run', 'campaign.yaml']


def _molecule(name: str, edit=None, suffix: str = 'xyz'):
    """A water molecule (edited by ``edit``) written to ``name.suffix``; the command follows."""
    from ase.build import molecule
    from ase.io import write

    def make(folder: Path) -> Path:
        atoms = molecule('H2O')
        if edit is not None:
            atoms = edit(atoms)
        path = folder / f'{name}.{suffix}'
        write(path, atoms)
        return path

    return make


def _command(make, *args):
    def write(folder: Path) -> list[str]:
        return [*args[:1], str(make(folder).name), *args[1:]]

    return write


def _set_element(symbol: str):
    def edit(atoms):
        atoms.symbols[0] = symbol
        return atoms

    return edit


def _nan(atoms):
    atoms.positions[0, 0] = np.nan
    return atoms


def _huge(_atoms):
    from ase.build import bulk

    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((12, 12, 11))
    atoms.pbc = False
    return atoms


def _close(_atoms):
    from ase import Atoms

    return Atoms('ZnO', positions=[[0, 0, 0], [0.05, 0, 0]], cell=[9, 9, 9], pbc=True)


def _pickle_model(folder: Path) -> list[str]:
    import torch

    class Planted:
        def __reduce__(self):
            return (Path.touch, (folder / 'PLANTED',))

    torch.save(Planted(), folder / 'downloaded.model')
    _molecule('water')(folder)
    return ['md', 'water.xyz', '--model', 'downloaded.model', '--steps', '5']


def _empty_import(folder: Path) -> list[str]:
    (folder / 'empty.xyz').write_text('')
    return ['dataset', 'import', 'empty.xyz']


def _huge_label(folder: Path) -> list[str]:
    (folder / 'absurd.xyz').write_text(
        '3\nProperties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=-1e306 pbc="F F F"\n'
        'O 0 0 0 0 0 0\nH 0.96 0 0 0 0 0\nH -0.24 0.93 0 0 0 0\n'
    )
    return ['dataset', 'import', 'absurd.xyz']


def _zero_initial(folder: Path) -> list[str]:
    text = EXAMPLE.read_text().replace(EXAMPLE_CIF, 'znim2.cif')
    text = text.replace('  periodic_frames: 2 ', '  periodic_frames: 0 ').replace('  clusters: 8 ', '  clusters: 0 ')
    (folder / 'campaign.yaml').write_text(text)
    return ['run', 'campaign.yaml']


# (class, case, command builder, what the message must say)
CASES = [
    (6, 'learning rate "fast"', _train('{hyperparameters: {lr: fast}}'), "hyperparameter 'lr' must be a float"),
    (6, 'hyperparameter typo', _train('{hyperparameters: {max_num_epoch: 3}}'), "Did you mean 'max_num_epochs'"),
    (6, 'device tpu', _train('{device: tpu}'), "device 'tpu' is not one of cpu, cuda"),
    (6, 'dtype float16', _train('{dtype: float16}'), "dtype 'float16' is not one of"),
    (
        6,
        'a CP2K code as the MD code',
        _campaign('md: {code: python-mace@localhost}', 'md: {code: cp2k@localhost}'),
        'is a cp2k code; the md step runs a Python with MACE',
    ),
    (
        6,
        'a code that does not exist',
        _campaign('cp2k: {code: cp2k@localhost', 'cp2k: {code: cp2k@nowhere'),
        'cp2k@nowhere',
    ),
    (6, 'no initial configurations', _zero_initial, 'MACE needs at least 2 configurations'),
    (
        6,
        'a target named twice',
        _campaign('targets:\n', 'targets:\n  - {name: znim2, structure: znim2.cif}\n'),
        'target names must be unique; repeated: znim2',
    ),
    (6, 'a key written twice', _campaign('  walks: 2\n', '  walks: 2\n  walks: 4\n'), "key 'walks' appears twice"),
    (6, 'a billion-laughs alias bomb', _alias_bomb, 'expands to more than 100,000 values'),
    (6, 'a key typo', _campaign('  walks: 2\n', '  walkz: 2\n'), "did you mean 'walks'?"),
    (6, 'pressure 1500 "GPa"', _campaign('[-1.5, 1.5]', '[-1500, 1500]'), 'did you give bar or MPa?'),
    (6, '300,000 K', _campaign('  temperature: 300.0\n', '  temperature: 300000.0\n'), 'less than or equal to 10000'),
    (
        6,
        'a 50 fs timestep',
        _campaign('  engine: ase\n', '  engine: ase\n  overrides: {timestep: 50.0}\n'),
        'a timestep of 50 fs',
    ),
    (6, '100,000 walks', _campaign('  walks: 2\n', '  walks: 100000\n'), 'less than or equal to 1000'),
    (6, 'a missing structure file', _campaign('structure: znim2.cif', 'structure: znim2.ciff'), 'znim2.ciff'),
    (6, 'an unknown label protocol', _campaign('  protocol: xtb\n', '  protocol: xtbb\n'), 'xtbb'),
    (
        6,
        'a 6,336-atom xTB label',
        _command(_molecule('huge', _huge), 'label', '--cluster', '--protocol', 'xtb'),
        'is beyond what one xtb single point can label',
    ),
    (6, 'a charge of -1000', _command(_molecule('water'), 'label', '--cluster', '--charge', '-1000'), '-1000'),
    (3, 'an XC with a line break', _label('fast', '{xc: "PBE\\n&END XC"}'), 'is not a CP2K XC_FUNCTIONAL'),
    (
        3,
        'an @INCLUDE in a raw section',
        _label('xtb', '{cp2k: {GLOBAL: {PROJECT: "p\\n@INCLUDE /etc/hosts"}}}'),
        'line break',
    ),
    (
        3,
        'a basis file outside the data folder',
        _label('fast', '{basis_set_files: [../../etc/passwd]}'),
        'settings.basis_set_files[0]',
    ),
    (
        9,
        'a YAML tag in the file',
        _campaign('  protocol: xtb\n', '  protocol: !!python/object/apply:os.getcwd []\n'),
        'could not determine a constructor for the tag',
    ),
    (2, 'a pickle disguised as a model', _pickle_model, 'is not a weights-only MACE model file'),
    (
        7,
        'an element with no multiplicity (Og)',
        _command(_molecule('og', _set_element('Og')), 'label', '--cluster'),
        "no ground-state multiplicity known for element 'Og'",
    ),
    (8, 'NaN coordinates', _command(_molecule('nan', _nan), 'label', '--cluster'), 'contains NaN or inf'),
    (
        8,
        'atoms 0.05 Å apart before MD',
        _command(_molecule('close', _close, 'cif'), 'md', '--model', '1'),
        'closer than 0.5 Å',
    ),
    (9, 'an empty extxyz import', _empty_import, 'no configurations found; nothing was stored'),
    (9, 'an energy of -1e306 eV', _huge_label, 'no energy is beyond'),
]


def _nodes() -> int:
    return orm.QueryBuilder().append(orm.Node).count()


@pytest.mark.parametrize(('issue_class', 'case', 'build', 'message'), CASES, ids=[row[1] for row in CASES])
def test_probe_case_is_refused_clearly(mofal_codes, tmp_path, monkeypatch, issue_class, case, build, message):
    shutil.copy(CIF, tmp_path / 'znim2.cif')
    monkeypatch.chdir(tmp_path)
    argv = build(tmp_path)
    files = sorted(path.name for path in tmp_path.iterdir())
    before = _nodes()
    result = CliRunner().invoke(cmd_root, argv)
    assert result.exit_code != 0, f'{case}: {result.output}'
    assert message in result.output, f'{case}: {result.output}'
    assert 'Traceback' not in result.output and not isinstance(result.exception, (TypeError, KeyError, AttributeError))
    assert _nodes() == before, f'{case}: nodes were stored'
    assert sorted(path.name for path in tmp_path.iterdir()) == files, f'{case}: files were written'
