"""Issue 18, class 1 (silent corruption of labelled data): every string value round-trips through extxyz with its type.

A table of strings that broke ASE's header tokeniser or came back as another type, plus a seeded random search
over an alphabet of every character class that matters (quotes, backslash, braces, separators, whitespace,
control characters, percent signs, non-ASCII), on info values and per-atom string columns; and the re-import of
an export, through the data plugin and through ``mofal dataset export``/``import``.
"""

import numpy as np
import pytest
from ase import Atoms
from click.testing import CliRunner

from aiida_mofal.mlp.configurations import ConfigurationError, read_extxyz, validate_configuration, write_extxyz

NASTY = [
    "o'clock", '', 'F', 'True', '0', '-7', '2.5e3', 'NaN', '-inf', 'say "hi"', 'C:\\dir', '}{', ']', '[',
    'two words', 'k=v', 'a,b', 'line\nbreak', '\ttab', 'ñandú', ' ', '%7E', 's', 'S%2', 'T F T', '1 2 3', '#', "'",
    '"', '\\', '\r\n', '\x01', '=', ':', 'Lattice="1 0 0"', 'pbc="T T T"',
]  # fmt: skip
ALPHABET = list('aZ09_.+-/:@') + list(' \t\n\r\'"\\{}[](),=#%&!?*;<>|`~$^') + ['é', 'λ', '中', '\x00', '\x7f']


def _cluster() -> Atoms:
    atoms = Atoms('H2O', positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], pbc=False)
    atoms.info.update(charge=0, multiplicity=1, REF_energy=-470.0)
    atoms.arrays['REF_forces'] = np.zeros((3, 3))
    return atoms


def _round_trip(atoms: Atoms) -> Atoms:
    (back,) = read_extxyz(write_extxyz([validate_configuration(atoms)]))
    return back


def _assert_same(original: Atoms, back: Atoms) -> None:
    assert back.pbc.tolist() == original.pbc.tolist()  # the header was not swallowed
    assert back.info['config_type'] == 'cluster' and back.info['REF_energy'] == original.info['REF_energy']
    for key, value in original.info.items():
        if isinstance(value, str):
            assert type(back.info[key]) is str and back.info[key] == value, key
    for key, value in original.arrays.items():
        if value.dtype.kind == 'U':
            assert back.arrays[key].dtype.kind == 'U' and back.arrays[key].tolist() == value.tolist(), key


def test_nasty_strings_round_trip_with_their_type():
    atoms = _cluster()
    for index, text in enumerate(NASTY):
        atoms.info[f'note{index}'] = text
    atoms.arrays['label'] = np.array(NASTY[:3])
    atoms.arrays['other'] = np.array(['', 'x y', 'T'])
    _assert_same(atoms, _round_trip(atoms))


def test_random_strings_round_trip():
    """A seeded property test (hypothesis is not a dependency): 300 random strings over the risky alphabet."""
    rng = np.random.default_rng(18)
    for _trial in range(30):
        atoms = _cluster()
        for key in range(10):
            atoms.info[f'k{key}'] = ''.join(rng.choice(ALPHABET, size=rng.integers(0, 12)))
        atoms.arrays['tag'] = np.array([''.join(rng.choice(ALPHABET, size=rng.integers(0, 6))) for _ in range(3)])
        _assert_same(atoms, _round_trip(atoms))


def test_plain_values_stay_readable_by_other_tools():
    """Plain strings (what MACE reads, e.g. config_type) are never encoded, so MACE and ASE see them as they are."""
    from ase.io import read

    atoms = _cluster()
    atoms.info['source'] = 'zif4_frame-12.xyz'
    atoms.arrays['role'] = np.array(['core', 'mantle', 'cap'])
    text = write_extxyz([validate_configuration(atoms)])
    assert 'mofal_strings' not in text and 'source=zif4_frame-12.xyz' in text
    import io

    plain = read(io.StringIO(text), format='extxyz')
    assert plain.info['config_type'] == 'cluster' and plain.arrays['role'].tolist() == ['core', 'mantle', 'cap']


@pytest.mark.parametrize('key', ['two words', 'pbc', 'Lattice', 'mofal_strings', '1st'])
def test_keys_that_cannot_be_written_are_refused(key):
    atoms = _cluster()
    atoms.info[key] = 'x'
    with pytest.raises(ConfigurationError, match='keys are identifiers'):
        validate_configuration(atoms)


def test_every_export_imports_again(aiida_profile, tmp_path):
    """``mofal dataset export`` then ``import``: the same strings, the same pbc, the same count."""
    from aiida_mofal.cli import cmd_root
    from aiida_mofal.data import DatasetData

    atoms = _cluster()
    atoms.info['source'] = "it's_a_cluster.xyz"
    atoms.info['note'] = '1'
    node = DatasetData([atoms]).store()
    runner = CliRunner()
    exported = runner.invoke(cmd_root, ['dataset', 'export', str(node.pk), str(tmp_path / 'out.xyz')])
    assert exported.exit_code == 0, exported.output
    imported = runner.invoke(cmd_root, ['dataset', 'import', str(tmp_path / 'out.xyz')])
    assert imported.exit_code == 0, imported.output
    pk = int(imported.output.split('data set ')[1].split()[0])
    (back,) = DatasetData.collection.get(pk=pk).get_atoms()
    assert back.info['source'] == "it's_a_cluster.xyz" and back.info['note'] == '1' and not back.pbc.any()
