"""``mofal train``: train a MACE model on a data set (the ``mofal.train`` work chain)."""

import click
from aiida.cmdline.params import types
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import DAEMON_OPTION, JSON_OPTION, echo_json, launch, load_code, parse_overrides, process_summary

DATASET = types.DataParamType(sub_classes=('aiida.data:mofal.dataset',))
MODEL = types.DataParamType(sub_classes=('aiida.data:mofal.mace_model',))


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
@DAEMON_OPTION
@JSON_OPTION
@decorators.with_dbenv()
def cmd_train(dataset, validation, test_set, protocol, parent_model, seed, overrides, code_label, daemon, as_json):
    """Train a MACE model on DATASET and print the model's PK (with --json: the PKs and the metrics)."""
    from aiida_mofal.mlp.training import check_training_inputs
    from aiida_mofal.workchains.train import TrainWorkChain

    code = load_code(code_label)
    try:
        check_training_inputs(dataset, validation, test_set)
        builder = TrainWorkChain.get_builder_from_protocol(
            code,
            dataset,
            validation,
            test_set,
            protocol=protocol,
            overrides=parse_overrides(overrides),
            parent_model=parent_model,
            seed=seed,
        )
    except ValueError as exception:  # also ProtocolError
        echo.echo_critical(str(exception))
    results, node = launch(builder, daemon, as_json)
    if results is None:
        return
    summary = {**process_summary(node), 'workchain': node.pk}
    if not node.is_finished_ok:
        if as_json:
            echo_json(summary)
        echo.echo_critical(f'TrainWorkChain<{node.pk}> failed [{node.exit_status}]: {node.exit_message}')
    model = results['model']
    if as_json:
        echo_json({**summary, 'model': model.pk, 'model_uuid': model.uuid, 'metrics': results['metrics'].get_dict()})
    else:
        click.echo(model.pk)
