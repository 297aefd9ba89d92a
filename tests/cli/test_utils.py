"""What every command shares: `--json` keeps standard output for the JSON, one launch helper, the daemon."""

import json
import sys

import click
import pytest
from aiida import orm
from aiida.engine import WorkChain, calcfunction
from click.testing import CliRunner

from aiida_mofal.cli import utils


@click.command()
@utils.JSON_OPTION
def chatty(as_json):
    print('a library notice on import')  # MACE prints such lines
    click.echo('a progress report')
    if as_json:
        utils.echo_json({'answer': 42})


def test_with_json_standard_output_carries_only_the_json():
    result = CliRunner().invoke(chatty, ['--json'])
    assert result.exit_code == 0 and json.loads(result.stdout) == {'answer': 42}
    assert 'a library notice on import' in result.stderr and 'a progress report' in result.stderr
    plain = CliRunner().invoke(chatty, [])
    assert 'a progress report' in plain.stdout and plain.stderr == ''
    assert sys.stdout is not utils.JSON_STREAM  # restored when the command ended


@calcfunction
def double(value: orm.Int) -> orm.Int:
    return orm.Int(2 * value.value)


class Doubler(WorkChain):
    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('value', valid_type=orm.Int)
        spec.output('result', valid_type=orm.Int)
        spec.outline(cls.run_it)

    def run_it(self):
        self.out('result', double(self.inputs.value))


def test_launch_in_the_foreground_returns_results_and_node(aiida_profile):
    builder = Doubler.get_builder()
    builder.value = orm.Int(21)
    results, node = utils.launch(builder, daemon=False, as_json=False)
    assert results['result'].value == 42 and node.is_finished_ok
    summary = utils.process_summary(node)
    assert summary['pk'] == node.pk and summary['process'] == 'Doubler' and summary['state'] == 'finished'


def test_a_missing_daemon_without_verdi_says_how_to_start_it(aiida_profile, monkeypatch, tmp_path, capsys):
    from aiida.engine.daemon import client as daemon_client

    class Stopped:
        is_daemon_running = False

        def start_daemon(self, **_):
            raise AssertionError('must not start without verdi')

    monkeypatch.setattr(daemon_client, 'get_daemon_client', lambda: Stopped())
    monkeypatch.setattr(daemon_client, 'VERDI_BIN', None)
    monkeypatch.setattr(sys, 'executable', str(tmp_path / 'python'))
    with pytest.raises(SystemExit):
        utils.ensure_daemon()
    message = ' '.join(capsys.readouterr().err.split())
    assert 'the daemon is not running' in message and '`verdi daemon start` from this environment' in message


def test_overrides_from_the_command_line():
    assert utils.parse_overrides(('hyperparameters.lr=0.005', 'device=cuda', 'swa=false')) == {
        'hyperparameters': {'lr': 0.005},
        'device': 'cuda',
        'swa': False,
    }
    with pytest.raises(click.BadParameter, match='is not KEY=VALUE'):
        utils.parse_overrides(('lr',))


def test_a_broker_that_never_answers_ends_in_one_message(monkeypatch, capsys):
    """Issue 18: a daemon whose broker is slow to start (a loaded machine) gave a ConnectionError traceback."""
    from aiida.manage import get_manager

    def never(*_args, **_kwargs):
        raise ConnectionError('Broker did not become ready within 10.0s')

    monkeypatch.setattr(type(get_manager()), 'get_communicator', never)
    with pytest.raises(SystemExit) as stopped:
        utils._wait_for_broker(seconds=0.2)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert 'did not answer within 0 s' in err and 'nothing was submitted' in err and 'verdi daemon restart' in err
