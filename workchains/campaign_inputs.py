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

__all__ = ('CALCULATIONS', 'campaign_inputs', 'validate_settings')

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
    from aiida_mofal.md.protocol import SANE_TIMESTEP, load_md_settings
    from aiida_mofal.mlp.training import validate_hyperparameters
    from aiida_mofal.protocols import load_protocol
    from aiida_mofal.uncertainty.gmm import DensityModel

    settings = campaign_settings(protocol, overrides).model_dump(mode='json')
    resources, codes = settings['resources'], dict(codes or {})
    if codes.get('scan') is not None and resources['scan'] is None:
        resources['scan'] = {'code': '', 'options': {}, 'settings': {}}
    for step, extra in (options or {}).items():
        if resources.get(step) is None:
            raise ValueError(f'options: no step {step!r} in resources; steps: {", ".join(CALCULATIONS)}.')
        resources[step]['options'] = {**resources[step]['options'], **extra}
    loaded = {}
    for step in [step for step in CALCULATIONS if resources.get(step) is not None]:
        loaded[step] = _load_code(step, codes.get(step) or resources[step]['code'])
        resources[step]['code'] = loaded[step].full_label
        resources[step]['options'] = _checked(f'resources.{step}', _scheduler_options, resources[step], loaded[step])
        error = check_options(resources[step]['options'], CALCULATIONS[step])
        if error:
            raise ValueError(f'resources.{step}.options: {error}')
    label = _checked('label', label_settings, settings['label']['protocol'], settings['label']['overrides'])
    train = _checked('train', load_protocol, 'mace', settings['train']['protocol'], settings['train']['overrides'])
    _checked('train', validate_hyperparameters, train['hyperparameters'])
    explore = settings['explore']
    md = _checked('explore', load_md_settings, explore['protocol'], explore['overrides'])
    fastest = max(stage['timestep'] for stage in md['schedule'])
    if fastest > SANE_TIMESTEP:
        raise ValueError(
            f'explore: a timestep of {fastest:g} fs; exploration MD of a MOF needs 0.5-2 fs (at most '
            f'{SANE_TIMESTEP:g}; the timestep is in fs, not ps).'
        )
    _checked('density.settings', DensityModel.validate_settings, settings['density']['settings'])
    if 'scan' in loaded:
        _checked('resources.scan.settings', _scan_job_settings, resources['scan']['settings'])
    if not targets:
        raise ValueError('targets: give at least one target structure.')
    data_dir = data_dir_for(loaded['cp2k'])
    inputs = {
        'settings': orm.Dict(settings),
        'targets': {name: _target(name, value, label, data_dir) for name, value in targets.items()},
        **{f'{step}_code': code for step, code in loaded.items()},
    }
    return inputs
