"""Inputs of ``TemperatureCampaignWorkChain`` from a temperature protocol: every check that can run before a job.

The settings (unknown keys, values, the label, MACE and MD protocols and overrides they name, the CBAD
resolutions), the codes, the CalcJob options of every step, the framework against the label protocol and its CBAD
topology, and the MD inputs of a run at the first and the last temperature.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiida import orm
from ase import Atoms

from aiida_mofal.campaign.temperature import TemperatureSettings, temperature_settings, temperatures

from .campaign_inputs import _checked, _target, checked_protocols, checked_step_codes
from .label import data_dir_for

__all__ = ('CALCULATIONS', 'temperature_inputs', 'validate_temperature_settings')

#: the CalcJob that each ``resources`` entry runs (its options are checked against it); ``evaluate`` is optional
CALCULATIONS = {'cp2k': 'cp2k', 'train': 'mofal.mace.train', 'md': 'mofal.md', 'evaluate': 'mofal.mace.evaluate'}


def validate_temperature_settings(value: orm.Dict, _) -> str | None:
    """Refuse settings that are not complete temperature-campaign settings."""
    try:
        TemperatureSettings.model_validate(value.get_dict())
    except ValueError as error:
        return f'temperature campaign settings: {error}'
    return None


def _framework(structure) -> tuple[str, Any]:
    """Return (name, structure) of the one framework: a mapping of one name, or the structure itself."""
    if isinstance(structure, Mapping):
        if len(structure) != 1:
            raise ValueError(
                f'targets: a temperature campaign learns one framework; got {len(structure)} targets '
                f'({", ".join(map(str, structure)) or "none"}).'
            )
        return next(iter(structure.items()))
    return 'framework', structure


def _check_topology(atoms: Atoms, resolutions: Mapping) -> None:
    from aiida_mofal.selection.cbad import CbadTopology

    try:
        CbadTopology.from_reference(atoms)
    except ValueError as error:
        raise ValueError(f'structure: CBAD cannot use it as the reference: {error}') from None


def _check_final(settings: Mapping, md: Mapping) -> None:
    """Refuse a final ramp too short to give ``final.random`` frames (one every ``dump_every`` steps)."""
    final = settings['final']
    steps = final['steps'] or settings['test']['steps']
    frames = steps // md['dump_every']
    if final['random'] > frames:
        raise ValueError(
            f'final: {final["random"]} random configurations from a ramp of {steps} steps, which gives {frames} '
            f'frames (one every {md["dump_every"]} steps): raise final.steps or lower final.random.'
        )


def temperature_inputs(
    codes: Mapping[str, orm.AbstractCode | str] | None,
    structure: orm.StructureData | Atoms | str | Path | Mapping[str, Any],
    protocol: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict:
    """Return the checked inputs (``settings``, ``structure``, ``<step>_code``) of a temperature campaign.

    See ``TemperatureCampaignWorkChain.get_builder_from_protocol`` for the arguments.

    :raises ValueError: naming the key, the structure or the code and the fix.
    """
    from aiida_mofal.calculations.md import check_md_inputs
    from aiida_mofal.md.protocol import load_md_settings

    settings = temperature_settings(protocol, overrides).model_dump(mode='json')
    loaded = checked_step_codes(settings, codes, options, CALCULATIONS, optional='evaluate', remote=False)
    label, md = checked_protocols(settings)
    explore = settings['explore']
    if md['ensemble'] != 'npt':
        raise ValueError(f'explore: the runs are NPT (the paper); the MD protocol gives ensemble {md["ensemble"]!r}.')
    name, value = _framework(structure)
    node = _target(name, value, label, data_dir_for(loaded['cp2k']))
    atoms = node.get_ase()
    _check_topology(atoms, settings['selection']['resolutions'])
    _check_final(settings, md)
    ladder = temperatures(settings)
    for temperature in (ladder[0], ladder[-1]):  # the engine accepts the runs' settings (not the model: none yet)
        stage = {'steps': explore['steps'] or 1, 'temperature': temperature, 'pressure': explore['pressure']}
        run = _checked('explore', load_md_settings, explore['protocol'], {**explore['overrides'], 'schedule': [stage]})
        _checked('explore', check_md_inputs, node, None, run, explore['engine'])
    settings['name'] = settings['name'] if settings['name'] != 'temperature-campaign' else f'{name}-temperature'
    return {'settings': orm.Dict(settings), 'structure': node, **{f'{s}_code': c for s, c in loaded.items()}}
