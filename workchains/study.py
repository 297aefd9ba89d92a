"""A paper's whole study as one aiida-workgraph WorkGraph: campaign → glasses → bulk moduli → glass analysis.

Why a WorkGraph and not one more WorkChain: the study is a task graph whose shape depends on its file (how many
glasses, which structures get an equation of state) and partly on results (the glasses exist only after the
melt-quench). WorkGraph builds that graph from data (graph tasks add one task per glass at run time), runs
independent tasks concurrently under one limit (``concurrency`` → ``max_number_jobs``), keeps every task a
process in one provenance graph, and lets a study be extended without writing an outline. The campaign, the
melt-quench and the EOS stay WorkChains with their own error handlers; the graph only composes them.

Slots: ``mofal.melt_quench``, ``mofal.eos`` and ``mofal.al.temperature`` are looked up by entry point
(:func:`load_workflow`), so the study uses them as soon as they are installed and refuses, before submitting, a
study that needs one that is not.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiida import orm
from aiida_workgraph import WorkGraph, get_current_graph, spec, task

from aiida_mofal.calculations.study import analyse_glass_structure, model_energy_volume

__all__ = ('MissingWorkflowError', 'build_study_graph', 'declare_glass_outputs', 'load_workflow', 'study_summary')


#: the EOS calcfunction as a task with its two outputs declared (WorkGraph infers only ``result`` otherwise)
EOS_FIT = task(outputs=spec.namespace(fit=orm.Dict, points=orm.ArrayData))(model_energy_volume)


class MissingWorkflowError(ValueError):
    """A study needs a work chain whose entry point is not installed."""


def load_workflow(entry_point: str, needed_by: str):
    """Return the work chain of ``entry_point``, or raise :class:`MissingWorkflowError` naming what needs it."""
    from aiida.common.exceptions import EntryPointError, MissingEntryPointError
    from aiida.plugins import WorkflowFactory

    try:
        return WorkflowFactory(entry_point)
    except (MissingEntryPointError, EntryPointError) as error:
        raise MissingWorkflowError(
            f'{needed_by} needs the work chain `{entry_point}` (entry point group aiida.workflows), which is not '
            f'installed here ({type(error).__name__}); install an aiida-mofal that provides it, or remove that '
            'section from the study file.'
        ) from None


@task.graph(outputs=spec.dynamic(orm.StructureData))
def melt_quench_slot(model: orm.Data, structure: orm.StructureData, code: orm.AbstractCode, settings: orm.Dict):
    """Melt and quench ``structure`` with ``model`` (``mofal.melt_quench``); return one structure per glass."""
    options = settings.get_dict()
    workflow = load_workflow('mofal.melt_quench', 'melt_quench')
    builder = workflow.get_builder_from_protocol(
        code,
        structure,
        model,
        protocol=options['protocol'] or 'melt_quench',
        overrides=options['overrides'] or None,
        engine=options['engine'],
        supercell=tuple(options['supercell']),
        replicas=options['glasses'],
    )
    job = get_current_graph().add_task(builder, name='melt_quench')
    declare_glass_outputs(job, options['glasses'])
    glasses = job.outputs.glasses
    return {f'glass_{k}': glasses[f'replica_{k}.structure'] for k in range(options['glasses'])}


def declare_glass_outputs(job, count: int) -> None:
    """Declare ``glasses.replica_<k>.structure`` (k < ``count``) in the melt-quench task's *spec*.

    ``glasses`` is a dynamic output namespace of ``mofal.melt_quench``: its replicas exist only once the work chain
    runs. A socket made on the live namespace (``glasses._new``) is enough to draw a link here, but the engine runs
    the graph rebuilt from its stored dict, where each task is made again from its spec: a socket that is not in
    the spec is gone and the link to it fails (``replica_0.structure is not in this namespace``). ``add_output_spec``
    writes the sockets into the spec that is stored, and makes them on the live task too. Each replica stays a
    dynamic namespace: the work chain also returns its ``trajectory``, ``integrity`` and ``analysis``, and the
    engine puts all of them in (a fixed namespace refused them: ``Field 'trajectory' is not defined``).
    """
    for k in range(count):
        if f'replica_{k}' not in job.outputs.glasses:
            job.add_output_spec(spec.dynamic(structure=orm.StructureData), f'glasses.replica_{k}')


def _eos_task(graph, name: str, model, structure, code, options: dict):
    """Add the equation of state of ``structure`` to ``graph``: the quick fit here, or ``mofal.eos``."""
    if options['workflow'] == 'fit':
        settings = orm.Dict({key: options[key] for key in ('strain', 'points', 'form')})
        return graph.add_task(EOS_FIT, name=f'eos_{name}', model=model, structure=structure, settings=settings)
    workflow = load_workflow('mofal.eos', 'eos.workflow: mofal.eos')
    builder = workflow.get_builder_for(
        code, structure, model, methods=options['methods'], settings=options['overrides'] or None
    )
    return graph.add_task(builder, name=f'eos_{name}')


def _eos_record(job, options: dict):
    """Return the output of an EOS task that goes in the summary: the fit, or the first method's result of mofal.eos."""
    return job.outputs.fit if options['workflow'] == 'fit' else job.outputs[options['methods'][0]]


@task.graph(outputs=spec.dynamic(orm.Dict))
def analyse_structures(
    model: orm.Data,
    crystal: orm.StructureData,
    code: orm.AbstractCode,
    settings: orm.Dict,
    glasses: Annotated[dict, spec.dynamic(orm.StructureData)] = None,
    reference: orm.StructureData | None = None,
):
    """Per structure: the bulk modulus (crystal and/or glasses) and the glass analysis; return their records."""
    options = settings.get_dict()
    graph = get_current_graph()
    # an inner graph has its own limit (aiida-workgraph's default: 1,000,000): the study's applies here too
    graph.max_number_jobs = options.get('concurrency', graph.max_number_jobs)
    records: dict[str, Any] = {}
    eos = options.get('eos')
    glasses = dict(glasses or {})
    if eos and 'crystal' in eos['structures']:
        records['eos_crystal'] = _eos_record(_eos_task(graph, 'crystal', model, crystal, code, eos), eos)
    for name, structure in sorted(glasses.items()):
        if eos and 'glasses' in eos['structures']:
            records[f'eos_{name}'] = _eos_record(_eos_task(graph, name, model, structure, code, eos), eos)
        if options.get('glass_analysis') is not None:
            extra = {'reference': reference} if reference is not None else {}
            glass = graph.add_task(
                analyse_glass_structure,
                name=f'glass_{name}',
                structure=structure,
                settings=orm.Dict(options['glass_analysis']['settings']),
                **extra,
            )
            records[f'glass_{name}'] = glass.outputs.result
    return records


@task.calcfunction()
def study_summary(**records: orm.Dict) -> orm.Dict:
    """One table of a study's results: B0 (GPa) per structure, density and ring counts per glass."""
    rows = {}
    for key, node in sorted(records.items()):
        kind, _, name = key.partition('_')
        row = rows.setdefault(name, {'structure': name})
        values = node.get_dict()
        if kind == 'eos':
            values = values.get('fit', values) if isinstance(values.get('fit'), dict) else values  # mofal.eos: nested
            row.update(B0_GPa=values.get('B0_GPa'), B0_GPa_err=values.get('B0_GPa_err'), V0_A3=values.get('V0_A3'))
        else:
            row.update({k: v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)})
            for key in ('rings', 'coordination'):  # ring counts per size, mean coordination per pair
                if isinstance(values.get(key), dict):
                    row[key] = dict(values[key])
    return orm.Dict({'rows': list(rows.values())})


def build_study_graph(study, model: orm.Data | None = None) -> WorkGraph:
    """Build the study's WorkGraph from a validated :class:`~aiida_mofal.study.config.StudyFile`.

    ``model``: use this MACE model instead of running the campaign (re-analysing an earlier campaign's model);
    the crystal is then the campaign file's target, read here.
    """
    from aiida_mofal.study.config import CAMPAIGN_ENTRY_POINTS

    settings = study.settings
    graph = WorkGraph(f'study_{settings.name}'.replace('-', '_').replace('.', '_'))
    graph.max_number_jobs = settings.concurrency
    campaign_file = study.campaign
    md_code = orm.load_code(campaign_file.settings.resources.md.code)
    target = (settings.melt_quench.target if settings.melt_quench else None) or next(iter(campaign_file.targets))
    if model is None:
        workflow = load_workflow(
            CAMPAIGN_ENTRY_POINTS[settings.campaign.kind], f'campaign.kind: {settings.campaign.kind}'
        )
        builder = workflow.get_builder_from_protocol(
            None, campaign_file.targets, protocol=campaign_file.protocol, overrides=campaign_file.overrides
        )
        crystal = builder.targets[target] if 'targets' in builder else builder.structure  # temperature: one
        campaign = graph.add_task(builder, name='campaign')
        model = campaign.outputs.model
    else:
        from aiida_mofal.structures.io import read_structure

        crystal = orm.StructureData(ase=read_structure(campaign_file.targets[target]))
    glasses = {name: orm.StructureData(ase=_read(path)) for name, path in study.glass_files.items()}
    inputs: dict[str, Any] = {}
    engine = {'model': model, 'code': md_code}  # both MD tasks run the campaign's (or the given) model on one code
    if settings.melt_quench is not None:
        melt_settings = orm.Dict(settings.melt_quench.model_dump())
        melt = graph.add_task(melt_quench_slot, name='melt_quench', structure=crystal, settings=melt_settings, **engine)
        inputs['glasses'] = melt.outputs
    elif glasses:
        inputs['glasses'] = glasses
    if settings.melt_quench is not None and glasses:
        raise ValueError('give glasses either by melt_quench or by glass_analysis.structures, not both')
    if study.reference is not None:
        inputs['reference'] = orm.StructureData(ase=_read(study.reference))
    options = {
        'eos': settings.eos.model_dump() if settings.eos else None,
        'glass_analysis': settings.glass_analysis.model_dump() if settings.glass_analysis else None,
        'concurrency': settings.concurrency,
    }
    if settings.eos is not None or settings.glass_analysis is not None:
        analysis = graph.add_task(
            analyse_structures, name='analysis', crystal=crystal, settings=orm.Dict(options), **engine, **inputs
        )
        graph.add_task(study_summary, name='summary', records=analysis.outputs)
    return graph


def _read(path):
    from aiida_mofal.structures.io import read_structure

    return read_structure(path)


def check_study(study) -> dict:
    """Check everything a study needs before anything is submitted; return the plan (tasks, slots, structures).

    The campaign builder is built (settings, codes, targets checked as ``mofal run`` checks them), every work chain
    the study needs is looked up by entry point, the MD code is loaded, and every structure file is read and its
    elements compared with the campaign's targets (a model cannot describe elements it was never trained on).

    :raises ValueError: naming the section and the fix (``MissingWorkflowError`` for a missing entry point).
    """
    from aiida_mofal.study.config import CAMPAIGN_ENTRY_POINTS

    settings = study.settings
    campaign_file = study.campaign
    problems = []
    workflow = None
    try:
        workflow = load_workflow(
            CAMPAIGN_ENTRY_POINTS[settings.campaign.kind], f'campaign.kind: {settings.campaign.kind}'
        )
    except MissingWorkflowError as error:
        problems.append(str(error))
    if workflow is not None:
        try:
            workflow.get_builder_from_protocol(
                None, campaign_file.targets, protocol=campaign_file.protocol, overrides=campaign_file.overrides
            )
        except ValueError as error:
            problems.append(f'campaign ({study.campaign_path}): {error}')
    try:
        orm.load_code(campaign_file.settings.resources.md.code)
    except Exception as error:  # noqa: BLE001 -- not found, ambiguous: the message says which
        problems.append(f'resources.md.code {campaign_file.settings.resources.md.code!r}: {error}')
    slots = {}
    if settings.melt_quench is not None:
        slots['melt_quench'] = 'mofal.melt_quench'
    if settings.eos is not None and settings.eos.workflow == 'mofal.eos':
        slots['eos'] = 'mofal.eos'
    for section, entry_point in slots.items():
        try:
            load_workflow(entry_point, section)
        except MissingWorkflowError as error:
            problems.append(str(error))
    problems.extend(_settings_problems(settings))
    elements = {symbol for path in campaign_file.targets.values() for symbol in _read(path).get_chemical_symbols()}
    structures = {}
    files = dict(study.glass_files, **({'reference': study.reference} if study.reference else {}))
    for name, path in files.items():
        try:
            atoms = _read(path)
        except Exception as error:  # noqa: BLE001 -- any reader failure is the file's problem
            problems.append(f'glass_analysis: {path}: cannot read the structure ({error})')
            continue
        extra = sorted(set(atoms.get_chemical_symbols()) - elements)
        if extra and name != 'reference':
            problems.append(f'glass_analysis: {path} holds {", ".join(extra)}, which no campaign target has.')
        structures[name] = {'path': str(path), 'atoms': len(atoms), 'formula': atoms.get_chemical_formula()}
    if problems:
        raise ValueError('\n'.join(problems))
    tasks = ['campaign'] + (['melt_quench'] if settings.melt_quench else [])
    if settings.eos is not None or settings.glass_analysis is not None:
        tasks += ['analysis', 'summary']
    return {
        'study': settings.name,
        'campaign': {
            'kind': settings.campaign.kind,
            'file': str(study.campaign_path),
            'targets': list(campaign_file.targets),
        },
        'tasks': tasks,
        'slots': slots,
        'structures': structures,
        'concurrency': settings.concurrency,
    }


def _settings_problems(settings) -> list[str]:
    """Check the melt-quench protocol and overrides and the ``mofal.eos`` settings (typos fail here, not mid-run)."""
    problems = []
    if settings.melt_quench is not None:
        from aiida_mofal.md.melt_quench import load_melt_quench_parameters

        melt = settings.melt_quench
        try:
            load_melt_quench_parameters(melt.protocol or 'melt_quench', melt.overrides or None)
        except (ValueError, KeyError) as error:
            problems.append(f'melt_quench.overrides: {error}')
    if settings.eos is not None and settings.eos.workflow == 'mofal.eos':
        from aiida_mofal.analysis.eos_methods import validate_method_settings

        unknown = sorted(set(settings.eos.overrides) - set(settings.eos.methods))
        if unknown:
            problems.append(f'eos.overrides: settings for {unknown}, which are not among eos.methods')
        for method in settings.eos.methods:
            try:
                validate_method_settings(method, settings.eos.overrides.get(method))
            except ValueError as error:
                problems.append(f'eos.overrides.{method}: {error}')
    return problems
