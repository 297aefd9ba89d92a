"""The study file: a paper's whole study (campaign → glasses → bulk moduli → glass analysis → report) in YAML.

A study names a campaign file (validated as ``mofal run`` validates it), then what to do with the campaign's
final model. Sections that need a work chain another part of the package provides (``melt_quench`` →
``mofal.melt_quench``, ``eos.workflow: mofal.eos``, ``campaign.kind: temperature`` → ``mofal.al.temperature``)
are looked up by entry point when the file is checked, so a study that needs a missing one is refused before
anything is submitted, with the entry point named. Errors have the campaign file's form: ``file:line: key: what``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiida_mofal.campaign.config import CampaignFile, CampaignFileError, _validate, load_campaign
from aiida_mofal.safe_yaml import read_mapping

__all__ = ('CAMPAIGN_ENTRY_POINTS', 'StudyFile', 'StudyFileError', 'StudySettings', 'load_study', 'parse_study')

CAMPAIGN_ENTRY_POINTS = {'cluster': 'mofal.al.cluster', 'temperature': 'mofal.al.temperature'}
MELT_QUENCH_ENTRY_POINT = 'mofal.melt_quench'
EOS_ENTRY_POINT = 'mofal.eos'


class StudyFileError(CampaignFileError):
    """A study file that cannot run; every problem with its key path and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid')


class CampaignStep(_Strict):
    """The active-learning campaign whose final model the rest of the study uses."""

    kind: Literal['cluster', 'temperature'] = 'cluster'
    file: str = Field(description='a campaign file, relative to the study file')


class MeltQuench(_Strict):
    """Glasses made by melting and quenching a campaign target with the final model (``mofal.melt_quench``)."""

    target: str | None = Field(None, description='campaign target to melt (default: the first)')
    glasses: int = Field(1, ge=1, le=64, description='replicas: glasses from different seeds')
    protocol: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    supercell: tuple[int, int, int] = (1, 1, 1)
    engine: Literal['ase', 'lammps-python', 'lammps-mliap'] | None = None


class Eos(_Strict):
    """Bulk moduli of the crystal and the glasses with the final model.

    ``workflow: fit`` is the quick estimate on main: MACE single points of isotropically scaled cells (fractional
    coordinates kept, no relaxation) fitted by Birch–Murnaghan; ``mofal.eos`` is the full work chain (entry
    point) with relaxations and MD, used when it is installed.
    """

    workflow: Literal['fit', 'mofal.eos'] = 'fit'
    methods: list[Literal['ev', 'pv', 'strain', 'fluctuations']] = Field(
        default_factory=lambda: ['ev'], description='mofal.eos: which methods (the first one goes in the summary)'
    )
    structures: list[Literal['crystal', 'glasses']] = Field(default_factory=lambda: ['crystal', 'glasses'])
    strain: float = Field(0.03, gt=0.0, le=0.15, description='largest |linear strain| of the fit grid')
    points: int = Field(7, ge=5, le=31)
    form: Literal['birch-murnaghan', 'vinet'] = 'birch-murnaghan'
    protocol: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict, description='mofal.eos: per-method settings')


class GlassAnalysis(_Strict):
    """RDFs, angles, coordination, density and rings of each glass (``aiida_mofal.analysis.glass``)."""

    structures: list[str] = Field(default_factory=list, description='extra glass structure files (relative)')
    reference: str | None = Field(None, description='a reference glass to compare with (relative)')
    settings: dict[str, Any] = Field(default_factory=dict, description='GlassSettings fields')


class StudySettings(_Strict):
    """Every section of a study file."""

    name: str = Field(pattern=r'^[A-Za-z0-9_.-]+$')
    description: str = ''
    campaign: CampaignStep
    melt_quench: MeltQuench | None = None
    eos: Eos | None = None
    glass_analysis: GlassAnalysis | None = None
    report: bool = True
    concurrency: int = Field(2, ge=1, le=1000, description='tasks of the study graph running at once')
    cost: dict[str, Any] = Field(default_factory=dict, description='the estimate people read; not used to run')

    @field_validator('eos')
    @classmethod
    def _structures(cls, value):
        if value is not None and not value.structures:
            raise ValueError('eos.structures names nothing; give crystal and/or glasses')
        return value


@dataclass(frozen=True)
class StudyFile:
    """A validated study file: its settings, its campaign file, and the files it names (resolved)."""

    source: str
    settings: StudySettings
    campaign: CampaignFile
    campaign_path: Path
    glass_files: dict[str, Path]
    reference: Path | None


def parse_study(text: str, source: str = 'study file', base: Path | None = None) -> StudyFile:
    """Validate study YAML ``text``; its campaign file and structure files are read relative to ``base``.

    :raises StudyFileError: ``source:line: key: problem`` for the study, then the campaign file's own errors.
    """
    root, data = read_mapping(text, source, 'study settings', StudyFileError)
    try:
        settings = _validate(StudySettings, data, source, root)
    except CampaignFileError as error:
        raise StudyFileError(str(error)) from None
    base = Path.cwd() if base is None else Path(base)
    problems = []
    campaign_path = (base / settings.campaign.file).resolve()
    campaign = None
    if not campaign_path.is_file():
        problems.append(f'{source}: campaign.file: {settings.campaign.file} not found (relative to the study file)')
    else:
        try:
            campaign = load_campaign(campaign_path)
        except CampaignFileError as error:
            problems.append(str(error))
        if campaign is not None and campaign.kind != settings.campaign.kind:
            problems.append(
                f'{source}: campaign.kind: {settings.campaign.kind}, but {settings.campaign.file} is a '
                f'{campaign.kind} campaign file (its `kind:`); make them agree'
            )
    glass_files, reference = {}, None
    if settings.glass_analysis is not None:
        for name in settings.glass_analysis.structures:
            path = (base / name).resolve()
            if not path.is_file():
                problems.append(f'{source}: glass_analysis.structures: {name} not found (relative to the study file)')
            glass_files[re.sub(r'\W', '_', Path(name).stem)] = path  # a task and link name: letters, digits, _
        if settings.glass_analysis.reference:
            reference = (base / settings.glass_analysis.reference).resolve()
            if not reference.is_file():
                problems.append(f'{source}: glass_analysis.reference: {settings.glass_analysis.reference} not found')
    if campaign is not None and settings.melt_quench is not None and settings.melt_quench.target is not None:
        if settings.melt_quench.target not in campaign.targets:
            problems.append(
                f'{source}: melt_quench.target: {settings.melt_quench.target!r} is not a campaign target '
                f'({", ".join(campaign.targets)})'
            )
    if settings.eos is not None and 'glasses' in settings.eos.structures and settings.melt_quench is None:
        if not glass_files:
            problems.append(f'{source}: eos.structures: glasses, but no melt_quench and no glass_analysis.structures')
    if problems:
        raise StudyFileError('\n'.join(problems))
    return StudyFile(source, settings, campaign, campaign_path, glass_files, reference)  # type: ignore[arg-type]


def load_study(path: str | Path) -> StudyFile:
    """Read and validate a study file and the campaign file it names."""
    path = Path(path)
    if not path.is_file():
        raise StudyFileError(f'{path}: no such study file.')
    return parse_study(path.read_text(), str(path), path.resolve().parent)
