"""``mofal train``: train a MACE model on a data set (the ``mofal.train`` work chain)."""

import contextlib
import logging
import sys

import click
from aiida.cmdline.params import types
from aiida.cmdline.utils import echo

from . import cmd_root
from .utils import JSON_OPTION, echo_json

DATASET = types.DataParamType(sub_classes=('aiida.data:mofal.dataset',))
MODEL = types.DataParamType(sub_classes=('aiida.data:mofal.mace_model',))


def _parse_overrides(pairs: tuple[str, ...]) -> dict:
    """Turn ``('hyperparameters.lr=0.005', ...)`` into a nested dict; values are read as YAML (numbers, bools)."""
    import yaml

    overrides: dict = {}
    for pair in pairs:
        key, sep, text = pair.partition('=')
        if not sep or not key:
            raise click.BadParameter(f'{pair!r} is not KEY=VALUE (e.g. hyperparameters.max_num_epochs=50).')
        *parents, leaf = key.split('.')
        target = overrides
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = yaml.safe_load(text)
    return overrides


@cmd_root.command('train')
@click.argument('dataset', type=DATASET)
@click.option('--validation', type=DATASET, help='Validation data set; default: a seeded split of DATASET.')
@click.option('--test', 'test_set', type=DATASET, help='Held-out data set, evaluated at the end.')
@click.option('--protocol', default='tiny', show_default=True, help='tiny, small or medium (protocols/mace.yaml).')
@click.option('--parent-model', type=MODEL, help='mofal.mace_model to fine-tune from.')
@click.option('--seed', type=int, help='Random seed (default: the protocol seed).')
@click.option(
    '--override',
    'overrides',
    multiple=True,
    metavar='KEY=VALUE',
    help='Change a protocol value, e.g. hyperparameters.max_num_epochs=50 or device=cuda (repeatable).',
)
@click.option('--code', 'code_label', default='python-mace@localhost', show_default=True, help='Python+MACE code.')
@click.option('--daemon', is_flag=True, help='Submit to the daemon and print the work chain PK instead of waiting.')
@JSON_OPTION
def cmd_train(dataset, validation, test_set, protocol, parent_model, seed, overrides, code_label, daemon, as_json):
    """Train a MACE model on DATASET and print the model's PK (with --json: the PKs and the metrics)."""
    from aiida import engine, orm

    from aiida_mofal.calculations.mace_train import check_training_inputs
    from aiida_mofal.protocols import ProtocolError
    from aiida_mofal.workchains.train import TrainWorkChain

    try:
        code = orm.load_code(code_label)
    except Exception as exception:  # noqa: BLE001 -- any lookup failure: tell the user how to get the code
        echo.echo_critical(f'cannot load code {code_label!r} ({exception}); run `mofal setup` or pass --code.')
    try:
        check_training_inputs(dataset, validation, test_set)
        builder = TrainWorkChain.get_builder_from_protocol(
            code,
            dataset,
            validation,
            test_set,
            protocol=protocol,
            overrides=_parse_overrides(overrides),
            parent_model=parent_model,
            seed=seed,
        )
    except (ProtocolError, ValueError) as exception:
        echo.echo_critical(str(exception))

    if daemon:
        node = engine.submit(builder)
        if as_json:
            echo_json({'workchain': node.pk, 'state': 'submitted'})
        else:
            echo.echo_report(f'submitted TrainWorkChain<{node.pk}>; follow it with `verdi process status {node.pk}`')
            click.echo(node.pk)
        return

    logger = logging.getLogger('aiida')
    level = logger.level
    if as_json:  # process reports go to standard output and would break the JSON
        logger.setLevel(logging.WARNING)
    try:  # libraries print to standard output on import (mace: cuequivariance); keep it for the result
        with contextlib.redirect_stdout(sys.stderr):
            _, node = engine.run_get_node(builder)
    finally:
        logger.setLevel(level)
    if not node.is_finished_ok:
        if as_json:
            echo_json({'workchain': node.pk, 'exit_status': node.exit_status, 'exit_message': node.exit_message})
        echo.echo_critical(f'TrainWorkChain<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
    model = node.outputs.model
    if as_json:
        echo_json(
            {
                'model': model.pk,
                'model_uuid': model.uuid,
                'workchain': node.pk,
                'metrics': node.outputs.metrics.get_dict(),
            }
        )
    else:
        click.echo(model.pk)
