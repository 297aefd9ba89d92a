"""``mofal rerun``: a finished campaign or study again, from the inputs its graph stored, here or on another computer.

Everything a campaign or study result depends on is a stored input node (settings ``Dict``, target structures,
codes, models), so a re-run needs no file: a campaign is rebuilt by :meth:`ProcessNode.get_builder_restart`, a
study by :meth:`WorkGraph.load` (the graph and every task's inputs, as stored on the WorkGraph node), which is
what makes a published archive (``verdi archive import``) re-runnable too.

``computer``: every code input is replaced by the code of the same label on that computer (``cp2k@localhost`` →
``cp2k@slurm``, made by ``mofal computer setup``), the ``resources.<step>.code`` of a campaign's settings follow,
and each step's scheduler options (GPUs, partition) are written again for the new computer's scheduler, with the
same checks as ``mofal run``. A code missing there is refused before anything is submitted, naming all of them.
"""

from __future__ import annotations

import copy
from typing import Any

from aiida import orm

__all__ = ('CAMPAIGN_LABELS', 'campaign_rerun_builder', 'code_on', 'retarget_campaign', 'study_rerun_graph')

#: process labels of what ``mofal rerun`` re-runs besides studies
CAMPAIGN_LABELS = ('ClusterCampaignWorkChain', 'TemperatureCampaignWorkChain')


def code_on(code: orm.AbstractCode, computer: str) -> orm.AbstractCode:
    """Return the code with ``code``'s label on ``computer``.

    :raises ValueError: naming the missing code and how to make it.
    """
    try:
        return orm.load_code(f'{code.label}@{computer}')
    except Exception as error:  # noqa: BLE001 -- not found or ambiguous: the message says which
        raise ValueError(
            f'no code {code.label}@{computer} ({type(error).__name__}); make it with `mofal computer setup FILE.yaml` '
            f'(docs/guide/remote.md) or give a computer that has it'
        ) from None


def retarget_campaign(inputs: dict[str, Any], computer: str) -> dict[str, Any]:
    """Return a campaign's inputs (``settings``, ``<step>_code``, ...) with every code moved to ``computer``.

    The settings' ``resources.<step>.code`` become the new codes' labels and the steps' options are written again
    for the new computer's scheduler (:func:`~aiida_mofal.remote.resources.scheduler_options`), then checked as
    ``mofal run`` checks them.

    :raises ValueError: for every code the computer lacks (all at once) or options it cannot honour.
    """
    from .campaign_inputs import CALCULATIONS, _scheduler_options
    from .label import check_options

    inputs = dict(inputs)
    settings = copy.deepcopy(inputs['settings'].get_dict())
    problems, moved = [], {}
    for key in sorted(key for key in inputs if key.endswith('_code')):
        try:
            moved[key] = code_on(inputs[key], computer)
        except ValueError as error:
            problems.append(f'{key}: {error}')
    if problems:
        raise ValueError('\n'.join(problems))
    for key, code in moved.items():
        step = key.removesuffix('_code')
        resource = (settings.get('resources') or {}).get(step)
        if resource is not None:
            resource['code'] = code.full_label
            resource['options'] = _scheduler_options(resource, code)
            error = check_options(resource['options'], CALCULATIONS[step]) if step in CALCULATIONS else None
            if error:
                raise ValueError(f'resources.{step}.options on {computer}: {error}')
        inputs[key] = code
    inputs['settings'] = orm.Dict(settings)
    return inputs


def campaign_rerun_builder(node: orm.WorkflowNode, computer: str | None = None):
    """Return a builder of campaign ``node``'s process with its stored inputs (codes moved to ``computer``)."""
    builder = node.get_builder_restart()
    if computer is not None:
        inputs = {key: builder[key] for key in builder if key != 'metadata'}
        for key, value in retarget_campaign(inputs, computer).items():
            builder[key] = value
    builder.metadata.label = node.label
    builder.metadata.description = f'rerun of {node.process_label}<{node.pk}> ({node.uuid})'
    return builder


def _move_codes(value, computer: str):
    """``value`` with every code in it (nested in dicts) replaced by its namesake on ``computer``."""
    if isinstance(value, orm.AbstractCode):
        return code_on(value, computer)
    if isinstance(value, dict):
        return {key: _move_codes(item, computer) for key, item in value.items()}
    return value


def study_rerun_graph(node: orm.ProcessNode, computer: str | None = None):
    """Return study ``node``'s WorkGraph, reset to run again from its stored task inputs (codes on ``computer``).

    The ``campaign`` task's inputs are moved by :func:`retarget_campaign` (settings follow the codes); every
    other task's code inputs (the MD code of the melt-quench and EOS slots) by label.
    """
    from aiida_workgraph import WorkGraph

    graph = WorkGraph.load(node)
    graph.reset()
    if computer is None:
        return graph
    for task in graph.tasks:
        values = task.inputs._value  # name → value, namespaces as dicts (node_graph's socket namespace)
        if task.name == 'campaign':
            moved = retarget_campaign({k: v for k, v in values.items() if k == 'settings' or k.endswith('_code')},
                                      computer)  # fmt: skip
        else:
            moved = {name: _move_codes(value, computer) for name, value in values.items() if _has_code(value)}
        if moved:
            task.set_inputs(moved)
    return graph


def _has_code(value) -> bool:
    if isinstance(value, dict):
        return any(_has_code(item) for item in value.values())
    return isinstance(value, orm.AbstractCode)
