"""The campaign file: one YAML document that says what to learn, how, where, and when to stop.

Validated before anything is submitted; every error names the key path and the line of the file, so that a
typo (``max_cycle`` for ``max_cycles``) is refused rather than silently ignored.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ('CampaignConfig', 'CampaignFileError', 'load_campaign', 'parse_campaign')


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid')


class Target(_Strict):
    """A system to learn: a structure file (relative to the campaign file) and a short name."""

    name: str = Field(pattern=r'^[A-Za-z0-9_-]+$')
    structure: str


class Initial(_Strict):
    """The initial training set: rattled, strained periodic copies of each target plus clusters cut from them."""

    periodic_frames: int = Field(3, ge=0)
    clusters: int = Field(6, ge=0)
    test_frames: int = Field(1, ge=0, description='periodic frames per target held out as the test set')
    rattle: float = Field(0.05, ge=0.0, le=0.5, description='Å, Gaussian')
    strain: float = Field(0.02, ge=0.0, le=0.2, description='max |ε| of a random symmetric cell strain')
    seed: int = 0


class Step(_Strict):
    """A protocol and validated overrides for one kind of process."""

    protocol: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)


class Train(Step):
    """Training: fine-tune from the previous model (default) or train from scratch each cycle."""

    fine_tune: bool = True


class Explore(Step):
    """MD walks per target and cycle; pressures drawn uniformly in ``pressure_range`` (GPa)."""

    engine: Literal['ase', 'lammps-python', 'lammps-mliap'] = 'ase'
    walks: int = Field(3, ge=1)
    pressure_range: tuple[float, float] = (-1.5, 1.5)
    temperature: float = Field(300.0, gt=0.0)
    steps: int | None = Field(None, ge=1, description='overrides the protocol: 500 fs at 0.5 fs = 1000 steps')

    @field_validator('pressure_range')
    @classmethod
    def _ordered(cls, value):
        if value[0] > value[1]:
            raise ValueError('pressure_range must be [low, high]')
        return value


class Extract(_Strict):
    """Cluster extraction around unknown atoms (SCIENCE.md §3): a cap per cycle, most uncertain first."""

    max_clusters: int = Field(150, ge=1)
    mantle_depth: int = Field(1, ge=0)
    merge_depth: int = Field(0, ge=0)
    vacuum: float = Field(6.0, ge=0.0)


class Density(_Strict):
    """Gaussian-mixture density model settings (passed to ``fit_density_model``)."""

    settings: dict[str, Any] = Field(default_factory=dict)


class Stop(_Strict):
    """When to stop: after ``max_cycles``, or when a target is reached (whichever comes first)."""

    max_cycles: int = Field(5, ge=0)
    unknown_fraction: float | None = Field(None, ge=0.0, le=1.0)
    mae_p95: float | None = Field(None, gt=0.0, description='eV/Å, on the test set')


class Resource(_Strict):
    """Which code runs a step, and its scheduler options (resources, queue, walltime, ...)."""

    code: str
    options: dict[str, Any] = Field(default_factory=dict)


class Resources(_Strict):
    """Codes per step: CP2K for labels, Python+MACE for training and MD (GPU nodes on a cluster)."""

    cp2k: Resource = Resource(code='cp2k@localhost')
    train: Resource = Resource(code='python-mace@localhost')
    md: Resource = Resource(code='python-mace@localhost')


class CampaignConfig(_Strict):
    """A whole cluster-based active-learning campaign (the cluster paper's Figure 2A)."""

    name: str = 'campaign'
    targets: list[Target] = Field(min_length=1)
    initial: Initial = Initial()
    label: Step = Step(protocol='xtb')
    train: Train = Train(protocol='tiny')
    explore: Explore = Explore(protocol='explore')
    extract: Extract = Extract()
    density: Density = Density()
    stop: Stop = Stop()
    resources: Resources = Resources()


class CampaignFileError(ValueError):
    """A campaign file that cannot run; the message lists every problem with its key path and line."""


def _line_of(root: yaml.Node, path: tuple) -> int | None:
    """Return the 1-based line of the YAML node at ``path`` (the deepest existing part)."""
    node, line = root, None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _known_keys(model: type[BaseModel], path: tuple) -> list[str]:
    for part in path:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        annotation = getattr(field, 'annotation', None)
        if isinstance(part, int):
            continue
        if annotation is None:
            return []
        args = getattr(annotation, '__args__', ())
        candidates = [annotation, *args]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def parse_campaign(text: str, source: str = 'campaign file') -> CampaignConfig:
    """Validate campaign YAML ``text``; raise :class:`CampaignFileError` with ``source:line: key: problem`` lines."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CampaignFileError(f'{source}: not valid YAML: {error}') from None
    if not isinstance(data, dict):
        raise CampaignFileError(f'{source}: expected a mapping of campaign settings at the top level.')
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            path = tuple(problem['loc'])
            key = '.'.join(str(part) for part in path)
            line = _line_of(root, path)
            message = problem['msg']
            if problem['type'] == 'extra_forbidden':
                known = _known_keys(CampaignConfig, path[:-1])
                close = difflib.get_close_matches(str(path[-1]), known, n=1)
                message = 'unknown key' + (f' (did you mean {close[0]!r}?)' if close else '')
                if known:
                    message += f'; valid: {", ".join(known)}'
            lines.append(f'{source}:{line or "?"}: {key}: {message}')
        raise CampaignFileError('\n'.join(lines)) from None


def load_campaign(path: str | Path) -> tuple[CampaignConfig, Path]:
    """Read and validate a campaign file; return the config and the directory that relative paths start from."""
    path = Path(path)
    config = parse_campaign(path.read_text(), str(path))
    base = path.resolve().parent
    missing = [t.structure for t in config.targets if not (base / t.structure).is_file()]
    if missing:
        raise CampaignFileError(f'{path}: target structure file(s) not found (relative to the file): {missing}')
    return config, base
