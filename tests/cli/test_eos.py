"""`mofal eos fit`: the JSON keys, the plot, refusals of bad files; the group's structure-or-subcommand routing."""

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

from aiida_mofal.analysis.eos import EV_PER_A3_IN_GPA, eos_energy
from aiida_mofal.cli import cmd_root
from aiida_mofal.cli.cmd_eos import StructureOrSubcommandGroup

KEYS = {'V0_A3', 'E0_eV', 'B0_GPa', 'B0_prime', 'V0_A3_err', 'E0_eV_err', 'B0_GPa_err', 'B0_prime_err'}


def _points(path, volumes=None, separator=', ', header='volume_A3, energy_eV\n'):
    volumes = np.linspace(95.0, 105.0, 9) if volumes is None else volumes
    energies = eos_energy('vinet', volumes, -12.0, 140.0 / EV_PER_A3_IN_GPA, 4.5, 100.0)
    energies += np.random.default_rng(0).normal(0, 1e-4, volumes.size)
    path.write_text(header + ''.join(f'{v}{separator}{e}\n' for v, e in zip(volumes, energies)))
    return path


def _run(*args):
    return CliRunner().invoke(cmd_root, ['eos', 'fit', *map(str, args)])


@pytest.mark.parametrize(('form', 'separator'), [('birch-murnaghan', ', '), ('vinet', '  ')])
def test_json_carries_the_parameters_and_their_errors(tmp_path, form, separator):
    points = _points(tmp_path / 'points.csv', separator=separator)
    result = _run(points, '--form', form, '--json', '-o', tmp_path / 'ev.png')
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert KEYS <= set(record) and record['form'] == form
    assert record['V0_A3'] == pytest.approx(100.0, rel=1e-3) and record['B0_GPa'] == pytest.approx(140.0, rel=0.02)
    assert all(record[key] > 0 for key in KEYS if key.endswith('_err'))
    assert (tmp_path / 'ev.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and record['plot'].endswith('ev.png')


def test_text_output_names_the_values_with_units(tmp_path):
    result = _run(_points(tmp_path / 'points.txt', header=''))
    assert result.exit_code == 0, result.output
    assert 'B0' in result.output and 'GPa' in result.output and 'Å³' in result.output


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        ('100\n101\n102\n', 'line 1: 1 column(s)'),
        ('V,E\n100,-1\nxx,-2\n101,-3\n', "line 3: 'xx' is not a number"),
        ('100,-1\n101,-1.1\n102,-1.05\n103,-0.9\n', '4 distinct volumes'),
        ('100,-1\n101,nan\n102,-1\n103,-1\n104,-1\n105,-1\n', 'line 2'),
    ],
)
def test_bad_files_are_refused_with_the_line_and_the_fix(tmp_path, content, message):
    (tmp_path / 'bad.csv').write_text(content)
    result = _run(tmp_path / 'bad.csv', '--json')
    assert result.exit_code != 0
    assert message in result.output and result.stdout.strip()[:1] != '{'


def test_grid_without_minimum_is_refused_unless_allowed(tmp_path):
    points = _points(tmp_path / 'one_side.csv', volumes=np.linspace(101.0, 110.0, 8))
    refused = _run(points, '--json')
    assert refused.exit_code != 0 and 'does not bracket a minimum' in refused.output
    allowed = _run(points, '--json', '--allow-unbracketed')
    assert allowed.exit_code == 0, allowed.output
    record = json.loads(allowed.stdout)
    assert record['bracketed'] is False and any('bracket' in note for note in record['warnings'])
    assert _run(points, '-o', tmp_path / 'plot.pdf').exit_code != 0


def test_a_structure_argument_goes_to_the_default_subcommand():
    group = StructureOrSubcommandGroup('eos')
    seen = []
    group.command('fit')(click.argument('points')(lambda points: seen.append(('fit', points))))
    runner = CliRunner()
    assert runner.invoke(group, ['fit', 'a.csv']).exit_code == 0
    assert runner.invoke(group, ['123', '--x', '1']).exit_code != 0  # no `run` yet: click's "No such command"

    @group.command('run')
    @click.argument('structure')
    @click.option('--x')
    def run(structure, x):
        seen.append(('run', structure, x))

    assert runner.invoke(group, ['123', '--x', '1']).exit_code == 0
    assert runner.invoke(group, ['run', 'fit', '--x', '2']).exit_code == 0  # a structure named like a command
    assert seen == [('fit', 'a.csv'), ('run', '123', '1'), ('run', 'fit', '2')]


def test_set_pairs_go_to_the_methods_that_have_the_key():
    from aiida_mofal.cli.cmd_eos import _method_settings

    settings = _method_settings(('strain.temperature=10', 'temperature=100', 'ev.points=7'), ('ev', 'strain', 'pv'))
    assert settings == {'ev': {'points': 7}, 'strain': {'temperature': 10}, 'pv': {'temperature': 100}}
    with pytest.raises(click.BadParameter, match='no setting'):
        _method_settings(('pressures=[1,2]',), ('ev',))
