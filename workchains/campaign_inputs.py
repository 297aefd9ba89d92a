"""Inputs of ``ClusterCampaignWorkChain`` from a campaign protocol: every check that can run before a job does.

``ClusterCampaignWorkChain.get_builder_from_protocol`` puts these into a builder; here they are made and checked:
the settings (unknown keys, values, the label, MACE and MD protocols and overrides they name, the density-model
settings), the codes, the CalcJob options of every step, and every target against the label protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiida import orm
from ase import Atoms

from aiida_mofal.campaign.config import CampaignSettings, campaign_settings

from .label import check_options, data_dir_for, label_settings

__all__ = ('CALCULATIONS', 'campaign_inputs', 'label_overrides', 'validate_settings')

#: the CalcJob that each ``resources`` entry runs (its options are checked against it)
CALCULATIONS = {'cp2k': 'cp2k', 'train': 'mofal.mace.train', 'md': 'mofal.md', 'scan': 'mofal.mace.evaluate'}
#: settings of the scan jobs that the campaign itself decides
SCAN_JOB_KEYS = ('mode', 'write_features', 'percentile')


def validate_settings(value: orm.Dict, _) -> str | None:
    """Refuse settings that are not complete campaign settings (see ``aiida_mofal.campaign.config``)."""
    try:
        CampaignSettings.model_validate(value.get_dict())
    except ValueError as error:
        return f'campaign settings: {error}'
    return None


def label_overrides(settings: Mapping) -> dict:
    """Return the label overrides of a campaign, with ``resources.cp2k.pack`` as ``calculation.pack``.

    Packing is a property of where the labels run (a queue that caps a user's jobs), so the campaign file says it
    next to the CP2K code; the label work chain reads it from its settings.
    """
    overrides = dict(settings['label']['overrides'] or {})
    pack = int(settings['resources']['cp2k'].get('pack') or 1)
    if pack > 1:
        overrides['calculation'] = {**overrides.get('calculation', {}), 'pack': pack}
    return overrides


def _checked(section: str, check: Callable, *args) -> Any:
    try:
        return check(*args)
    except ValueError as error:
        raise ValueError(f'{section}: {error}') from None


def _scan_job_settings(settings: Mapping) -> dict:
    from aiida_mofal.calculations.mace_evaluate import validate_settings as validate_job_settings

    decided = sorted(set(settings) & set(SCAN_JOB_KEYS))
    if decided:
        raise ValueError(f'{decided} are set by the campaign for each job; give only device and batch sizes.')
    return validate_job_settings(settings)


def _scheduler_options(resource: Mapping, code: orm.AbstractCode) -> dict:
    """Return the step's options with its GPUs, partition, QOS and account written for the code's scheduler."""
    from aiida_mofal.remote.resources import computer_partitions, scheduler_options

    computer = code.computer
    return scheduler_options(resource, computer.scheduler_type, resource['options'], computer_partitions(computer))


def _load_code(step: str, code: orm.AbstractCode | str) -> orm.AbstractCode:
    if isinstance(code, orm.AbstractCode):
        return code
    try:
        return orm.load_code(code)
    except Exception:  # noqa: BLE001 -- not existing, ambiguous, a bad label: say how to get one
        raise ValueError(
            f'resources.{step}.code: no code {code!r} in this profile; run `mofal setup` (localhost) '
            'or `verdi code list` and name an existing one.'
        ) from None


def _check_kind(step: str, code: orm.AbstractCode) -> None:
    """Refuse a code of the wrong kind for ``step`` (a CP2K code as the MD code), by its default plugin."""
    plugin = code.default_calc_job_plugin
    if step == 'cp2k' and plugin not in (None, 'cp2k'):
        raise ValueError(f'resources.cp2k.code: {code.full_label} is a {plugin} code; labels need a CP2K code.')
    if step != 'cp2k' and plugin is not None and not plugin.startswith('mofal.'):
        raise ValueError(
            f'resources.{step}.code: {code.full_label} is a {plugin} code; the {step} step runs a Python with MACE '
            '(e.g. python-mace@localhost from `mofal setup`).'
        )


def _target(name: str, value: orm.StructureData | Atoms | str | Path, label: dict, data_dir) -> orm.StructureData:
    """Return a target as a StructureData, checked against the label protocol (a path is read with ASE)."""
    from aiida_mofal.cp2k.inputs import check_labelling_input
    from aiida_mofal.structures.io import read_structure

    if isinstance(value, orm.StructureData):
        atoms = value.get_ase()
    elif isinstance(value, Atoms):
        atoms = value.copy()
    else:
        atoms = _checked(f'targets[{name}]', read_structure, value)
    atoms.info.update(config_type='periodic', charge=0, multiplicity=1)
    check_labelling_input(atoms, label, f'target {name!r}', data_dir)
    return value if isinstance(value, orm.StructureData) else orm.StructureData(ase=atoms)


def checked_codes(
    resources: dict,
    codes: Mapping[str, orm.AbstractCode | str],
    options: Mapping[str, Mapping[str, Any]] | None,
    calculations: Mapping[str, str],
    remote: bool = True,
) -> dict[str, orm.AbstractCode]:
    """Load the code of every step of ``resources`` and check its CalcJob options; return step → code.

    ``resources`` is changed in place: each step's ``code`` becomes the code's full label and ``options`` are merged
    over its options. With ``remote`` (the cluster campaign) a code of the wrong kind is refused and the step's
    GPUs, partition, QOS and account are written as the scheduler options of the code's computer.
    """
    for step, extra in (options or {}).items():
        if resources.get(step) is None:
            raise ValueError(f'options: no step {step!r} in resources; steps: {", ".join(calculations)}.')
        resources[step]['options'] = {**resources[step]['options'], **extra}
    loaded = {}
    for step in [step for step in calculations if resources.get(step) is not None]:
        loaded[step] = _load_code(step, codes.get(step) or resources[step]['code'])
        resources[step]['code'] = loaded[step].full_label
        if remote:
            _check_kind(step, loaded[step])
            resources[step]['options'] = _checked(
                f'resources.{step}', _scheduler_options, resources[step], loaded[step]
            )
        error = check_options(resources[step]['options'], calculations[step])
        if error:
            raise ValueError(f'resources.{step}.options: {error}')
    return loaded


def checked_step_codes(
    settings: dict,
    codes: Mapping[str, orm.AbstractCode | str] | None,
    options: Mapping[str, Mapping[str, Any]] | None,
    calculations: Mapping[str, str],
    optional: str,
    remote: bool = True,
) -> dict[str, orm.AbstractCode]:
    """Load and check the code of every step of ``settings['resources']`` (see :func:`checked_codes`).

    The step ``optional`` (a cluster campaign's scan, a temperature campaign's evaluation) runs as a MACE evaluation
    job only when a code is given for it, in ``codes`` or in the settings; both campaigns then decide its job settings
    the same way, so they are checked here.
    """
    resources, codes = settings['resources'], dict(codes or {})
    if codes.get(optional) is not None and resources[optional] is None:
        resources[optional] = {'code': '', 'options': {}, 'settings': {}}
    loaded = checked_codes(resources, codes, options, calculations, remote=remote)
    if optional in loaded:
        _checked(f'resources.{optional}.settings', _scan_job_settings, resources[optional]['settings'])
    return loaded


def checked_protocols(settings: Mapping) -> tuple[dict, dict]:
    """Check the label, MACE and MD protocols and overrides that ``settings`` name; return (label, MD) settings."""
    from aiida_mofal.md.protocol import load_md_settings
    from aiida_mofal.mlp.training import validate_train_protocol
    from aiida_mofal.protocols import load_protocol

    label = _checked('label', label_settings, settings['label']['protocol'], label_overrides(settings))
    train = _checked('train', load_protocol, 'mace', settings['train']['protocol'], settings['train']['overrides'])
    _checked('train', validate_train_protocol, train)
    explore = settings['explore']
    return label, _checked('explore', load_md_settings, explore['protocol'], explore['overrides'])


def campaign_inputs(
    codes: Mapping[str, orm.AbstractCode | str] | None,
    targets: Mapping[str, orm.StructureData | Atoms | str | Path],
    protocol: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict:
    """Return the checked inputs (``settings``, ``targets``, ``<step>_code``) of a campaign.

    See ``ClusterCampaignWorkChain.get_builder_from_protocol`` for the arguments.

    :raises ValueError: naming the key, the target or the code and the fix.
    """
    from aiida_mofal.md.protocol import SANE_TIMESTEP
    from aiida_mofal.uncertainty.gmm import DensityModel

    settings = campaign_settings(protocol, overrides).model_dump(mode='json')
    loaded = checked_step_codes(settings, codes, options, CALCULATIONS, optional='scan')
    label, md = checked_protocols(settings)
    fastest = max(stage['timestep'] for stage in md['schedule'])
    if fastest > SANE_TIMESTEP:
        raise ValueError(
            f'explore: a timestep of {fastest:g} fs; exploration MD of a MOF needs 0.5-2 fs (at most '
            f'{SANE_TIMESTEP:g}; the timestep is in fs, not ps).'
        )
    _checked('density.settings', DensityModel.validate_settings, settings['density']['settings'])
    if not targets:
        raise ValueError('targets: give at least one target structure.')
    data_dir = data_dir_for(loaded['cp2k'])
    inputs = {
        'settings': orm.Dict(settings),
        'targets': {name: _target(name, value, label, data_dir) for name, value in targets.items()},
        **{f'{step}_code': code for step, code in loaded.items()},
    }
    elements = sorted({kind.symbol for target in inputs['targets'].values() for kind in target.kinds})
    inputs.update(_initial_nodes(settings['initial'], elements))
    if settings['test_sets']:
        inputs['test_sets'] = {name: _test_set(name, value) for name, value in settings['test_sets'].items()}
    return inputs


def _test_set(name: str, value: int | str):
    """Load or store one extra test set; it must carry energies and forces."""
    import re

    from aiida_mofal.data import DatasetData

    if not re.fullmatch(r'[A-Za-z][A-Za-z0-9_]*', name):
        raise ValueError(f'test_sets: {name!r} is not a valid name (letters, digits, _; a letter first).')
    if isinstance(value, int) or str(value).isdigit():
        dataset = _load(f'test_sets.{name}', int(value))
        if not isinstance(dataset, DatasetData):
            raise ValueError(f'test_sets.{name}: node {value} is a {type(dataset).__name__}, not a mofal.dataset.')
    else:
        if not Path(value).is_file():
            raise ValueError(f'test_sets.{name}: {value} is neither a data set PK nor a file.')
        dataset = _checked(f'test_sets.{name}', DatasetData.from_file, value).store()
    if not {'energy', 'forces'} <= set(dataset.labels):
        raise ValueError(f'test_sets.{name}: the configurations need energy and forces labels.')
    return dataset


def _initial_nodes(initial: Mapping, elements: list[str]) -> dict:
    """Resolve ``initial.dataset`` / ``initial.model`` to stored nodes; refuse what cannot start a campaign.

    A data set must carry energies and forces and the isolated-atom energies of every element of it and of the
    targets (the later cluster labels are referenced to them). From an extxyz file, single-atom frames with
    ``config_type=IsolatedAtom`` (MACE's convention) or ``initial.isolated_atom_energies`` give those.
    """
    from aiida_mofal.data import DatasetData, MaceModelData

    nodes = {}
    source = initial.get('dataset')
    if source is not None:
        if isinstance(source, int) or str(source).isdigit():
            dataset = _load('initial.dataset', int(source))
            if not isinstance(dataset, DatasetData):
                raise ValueError(f'initial.dataset: node {source} is a {type(dataset).__name__}, not a mofal.dataset.')
        else:
            dataset = _dataset_from_file(Path(source), initial.get('isolated_atom_energies'))
        missing = sorted({'energy', 'forces'} - set(dataset.labels))
        if missing:
            raise ValueError(f'initial.dataset: the configurations carry no {" or ".join(missing)} labels.')
        lacking = sorted((set(elements) | set(dataset.elements)) - set(dataset.isolated_atom_energies))
        if lacking:
            raise ValueError(
                f'initial.dataset: no isolated-atom energies for {", ".join(lacking)}; give IsolatedAtom frames in '
                'the file or initial.isolated_atom_energies (eV, same level of theory as the labels).'
            )
        nodes['initial_dataset'] = dataset
    if initial.get('model') is not None:
        model = _load('initial.model', int(initial['model']))
        if not isinstance(model, MaceModelData):
            raise ValueError(f'initial.model: node {model.pk} is a {type(model).__name__}, not a mofal.mace_model.')
        _checked('initial.model', lambda: model.require_elements(elements, what='the targets'))
        nodes['initial_model'] = model
    return nodes


def _dataset_from_file(path: Path, energies: Mapping | None):
    """Store an extxyz file as a data set; its ``IsolatedAtom`` frames become the isolated-atom energies."""
    from aiida_mofal.data import DatasetData
    from aiida_mofal.mlp.configurations import read_extxyz

    if not path.is_file():
        raise ValueError(f'initial.dataset: {path} is neither a data set PK nor a file.')
    frames = _checked('initial.dataset', read_extxyz, str(path))
    e0s = dict(energies or {})
    kept = []
    for atoms in frames:
        if atoms.info.get('config_type') == 'IsolatedAtom' and len(atoms) == 1:
            e0s.setdefault(atoms.get_chemical_symbols()[0], float(atoms.info['REF_energy']))
        else:
            kept.append(atoms)
    return _checked('initial.dataset', lambda: DatasetData(kept, isolated_atom_energies=e0s)).store()


def _load(section: str, pk: int) -> orm.Node:
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_node(pk)
    except NotExistent:
        raise ValueError(f'{section}: there is no node with PK {pk} in this profile.') from None
