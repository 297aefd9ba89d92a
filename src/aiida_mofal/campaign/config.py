"""The campaign file: one YAML document that says what to learn, how, where, and when to stop.

A campaign's settings are a protocol of ``protocols/campaign.yaml`` (``demo`` unless the file says
``protocol: NAME``) with the file's sections merged over it as overrides. The merged settings are validated
here, before anything is submitted; every error names the key path and the line of the file, so that a typo
(``max_cycle`` for ``max_cycles``) is refused rather than silently ignored. The same validation serves
``ClusterCampaignWorkChain.get_builder_from_protocol`` for overrides given from Python. A file with
``kind: temperature`` is a temperature campaign (:mod:`aiida_mofal.campaign.temperature`), parsed the same way.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aiida_mofal.protocols import ProtocolError, load_protocol
from aiida_mofal.safe_yaml import YamlInputError, load_yaml

__all__ = (
    'CampaignFile',
    'CampaignFileError',
    'CampaignSettings',
    'KINDS',
    'campaign_settings',
    'load_campaign',
    'parse_campaign',
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid')


class Target(_Strict):
    """A system to learn: a structure file (relative to the campaign file) and a short name."""

    name: str = Field(pattern=r'^[A-Za-z0-9_-]+$')
    structure: str


class Initial(_Strict):
    """The initial training set: rattled, strained periodic copies of each target plus clusters cut from them."""

    periodic_frames: int = Field(ge=0)
    clusters: int = Field(ge=0)
    test_frames: int = Field(ge=0, description='periodic frames per target held out as the test set')
    test_source: Literal['md', 'perturbed'] = Field(
        default='md',
        description='md: frames of an MD walk of the first model at test_temperature (the paper: MD at 600 K), '
        'labelled once; perturbed: rattled, strained cells like the training frames',
    )
    test_temperature: float = Field(default=600.0, gt=0.0, le=10_000.0, description='K, of the test-set MD walk')
    test_ensemble: Literal['nvt', 'npt'] = Field(
        default='nvt', description="the test walk's ensemble: nvt keeps the target's cell; npt at 0 GPa"
    )
    test_steps: int | None = Field(
        default=None, ge=1, le=10_000_000, description='length of the test-set MD walk (null: the explore walk)'
    )
    rattle: float = Field(ge=0.0, le=0.5, description='Å, Gaussian')
    strain: float = Field(ge=0.0, le=0.2, description='max |ε| of a random symmetric cell strain')
    seed: int
    dataset: int | str | None = Field(
        default=None,
        description='start from this labelled set: a mofal.dataset PK, or an extxyz file with REF_ keys (and '
        'IsolatedAtom frames or isolated_atom_energies) instead of building one from the targets',
    )
    isolated_atom_energies: dict[str, float] | None = Field(default=None, description='eV, for an extxyz dataset')
    model: int | None = Field(default=None, description='a mofal.mace_model PK: the first model (no first training)')

    @model_validator(mode='after')
    def _enough_to_train(self):
        if self.periodic_frames + self.clusters < 2:
            raise ValueError(
                f'{self.periodic_frames} periodic frames and {self.clusters} clusters per target: MACE needs at '
                'least 2 configurations (one to train on, one to validate); raise periodic_frames or clusters'
            )
        return self


class Step(_Strict):
    """A protocol and validated overrides for one kind of process."""

    protocol: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)


class Train(Step):
    """Training: fine-tune from the previous model (default) or train from scratch each cycle."""

    fine_tune: bool


class Explore(Step):
    """MD walks per target and cycle; pressures drawn uniformly in ``pressure_range`` (GPa)."""

    engine: Literal['ase', 'lammps-python', 'lammps-mliap']
    walks: int = Field(ge=1, le=1000, description='per target and cycle; more is a typo, not a campaign')
    pressure_range: tuple[float, float]
    temperature: float = Field(gt=0.0, le=10_000.0, description='K; MOFs melt or decompose far below 10,000 K')
    steps: int | None = Field(ge=1, le=10_000_000, description='overrides the protocol: 500 fs at 0.5 fs = 1000 steps')
    gate_unknown_fraction: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description='uncertainty-gated walks (engine ase): the MD job scores its frames with the density model and '
        'ends a walk at the first one with this fraction of unknown atoms; null: fixed-length walks (the paper)',
    )
    gate_every: int = Field(default=1, ge=1, description='score every n-th dumped frame of a gated walk')

    @model_validator(mode='after')
    def _gate_engine(self):
        if self.gate_unknown_fraction is not None and self.engine != 'ase':
            raise ValueError(f'gated walks (gate_unknown_fraction) run with engine ase only, not {self.engine}')
        return self

    @field_validator('pressure_range')
    @classmethod
    def _ordered(cls, value):
        if value[0] > value[1]:
            raise ValueError('pressure_range must be [low, high]')
        if max(abs(value[0]), abs(value[1])) > 100.0:
            raise ValueError(
                f'pressure_range {list(value)} is in GPa: a MOF is studied at a few GPa, never beyond 100 GPa '
                '(did you give bar or MPa? 1 GPa = 10,000 bar)'
            )
        return value


class Extract(_Strict):
    """Cluster extraction around unknown atoms (SCIENCE.md §3): a cap per cycle, most uncertain first."""

    max_clusters: int = Field(ge=1)
    mantle_depth: int | Literal['auto'] = Field(
        description="blocks around the core; 'auto': each cycle, the cheapest of mantle_depths whose core-atom "
        'force error against the bulk (force matching with the cycle model) is below mantle_force_threshold'
    )
    mantle_force_threshold: float = Field(default=0.05, gt=0.0, le=10.0, description='eV/Å, for mantle_depth auto')
    mantle_depths: list[int] = Field(default=[0, 1, 2], min_length=1, description='candidates for mantle_depth auto')
    mantle_samples: int = Field(default=3, ge=1, le=20, description='sample clusters per target (auto)')
    merge_depth: int = Field(ge=0)
    vacuum: float = Field(ge=0.0)
    reference_topology: bool = Field(
        default=True, description="blocks from the target's bond graph mapped onto each frame (false: per frame)"
    )

    @field_validator('mantle_depth', mode='before')
    @classmethod
    def _depth(cls, value):
        if value != 'auto' and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"mantle_depth {value!r}: give a block count >= 0 or 'auto' (force matching)")
        return value

    @field_validator('mantle_depths')
    @classmethod
    def _depths(cls, value):
        if any(depth < 0 or depth > 4 for depth in value) or len(set(value)) != len(value):
            raise ValueError(f'mantle_depths {value}: distinct block counts in 0..4 (deeper clusters are too big)')
        return sorted(value)


class Density(_Strict):
    """Gaussian-mixture density model settings (passed to ``fit_density_model``)."""

    settings: dict[str, Any] = Field(default_factory=dict)


class Stop(_Strict):
    """When to stop: after ``max_cycles``, or when a target is reached (whichever comes first)."""

    max_cycles: int = Field(ge=0)
    unknown_fraction: float | None = Field(ge=0.0, le=1.0)
    mae_p95: float | None = Field(gt=0.0, description='eV/Å, on the test set')


class Resource(_Strict):
    """Which code runs a step, and its CalcJob options (resources, queue, walltime, scheduler commands, ...).

    ``gpus`` (per job), ``partition``, ``qos`` and ``account`` become the scheduler lines of the code's computer
    (``aiida_mofal.remote.resources``); with ``gpus > 0`` the MACE steps run on ``cuda``.
    """

    code: str
    options: dict[str, Any] = Field(default_factory=dict)
    gpus: int = Field(0, ge=0, description='GPUs per job (SLURM: #SBATCH --gres=gpu:N)')
    partition: str | None = None
    qos: str | None = None
    account: str | None = None


class LabelResource(Resource):
    """The CP2K code and options of the labels, and how many structures one scheduler job labels (``pack``)."""

    pack: int = Field(
        1, ge=1, description='structures per CP2K scheduler job; >1 packs them into mofal.cp2k.packed jobs'
    )


class ScanResource(Resource):
    """The code that runs a cycle's MACE inference as jobs, and the settings of those ``mofal.mace.evaluate`` jobs."""

    settings: dict[str, Any] = Field(
        default_factory=dict, description='device (cpu/cuda), max_atoms_per_batch, max_atoms_per_chunk'
    )


class Resources(_Strict):
    """Codes per step: CP2K for labels, Python+MACE for training and MD; optionally one for the scan.

    Without ``scan`` the MACE inference of a cycle (features of every frame, density fit, evaluation) runs in
    the process that runs the campaign: right for small systems. With it, those run as jobs on that code.
    """

    cp2k: LabelResource
    train: Resource
    md: Resource
    scan: ScanResource | None = None


class CampaignSettings(_Strict):
    """Every setting of one campaign: a protocol of ``protocols/campaign.yaml`` with overrides applied."""

    protocol: str
    name: str
    initial: Initial
    label: Step
    train: Train
    explore: Explore
    extract: Extract
    density: Density
    stop: Stop
    resources: Resources
    test_sets: dict[str, int | str] = Field(
        default_factory=dict,
        description='extra test sets evaluated every cycle: name -> mofal.dataset PK or labelled extxyz file',
    )


class _CampaignFileModel(CampaignSettings):
    """What a campaign file may hold: the targets, a protocol name, and overrides of every other section."""

    targets: list[Target] = Field(min_length=1)

    @field_validator('targets')
    @classmethod
    def _unique(cls, value):
        names = [target.name for target in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f'target names must be unique; repeated: {", ".join(repeated)}')
        return value


#: ``kind:`` of a campaign file -> (protocol file, settings model, file model), filled by :func:`_kind`
KINDS = ('cluster', 'temperature')


def _kind(kind: str) -> tuple[str, type[BaseModel], type[BaseModel]]:
    """Return the protocol file and the settings and file models of a campaign ``kind``."""
    if kind == 'temperature':
        from .temperature import PROTOCOL_FILE, TemperatureFileModel, TemperatureSettings

        return PROTOCOL_FILE, TemperatureSettings, TemperatureFileModel
    return 'campaign', CampaignSettings, _CampaignFileModel


@dataclass(frozen=True)
class CampaignFile:
    """A validated campaign file: its kind, protocol, sections as written (the overrides) and targets.

    ``settings`` is a :class:`CampaignSettings` (``kind: cluster``, the default) or a
    :class:`~aiida_mofal.campaign.temperature.TemperatureSettings` (``kind: temperature``).
    """

    source: str
    protocol: str
    overrides: dict
    settings: CampaignSettings
    targets: dict[str, Path]
    kind: str = 'cluster'


class CampaignFileError(ValueError):
    """Campaign settings that cannot run; the message lists every problem with its key path (and line)."""


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


def _merge(base: Mapping, overrides: Mapping) -> dict:
    """Return ``base`` updated with ``overrides``, mappings merged key by key; unknown keys are left to validation."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _validate(model: type[BaseModel], data: dict, source: str, root: yaml.Node | None = None):
    """Validate ``data``; raise :class:`CampaignFileError` with one ``source:line: key: problem`` per problem."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            path = tuple(problem['loc'])
            key = '.'.join(str(part) for part in path)
            line = _line_of(root, path) if root is not None else None
            message = problem['msg']
            if problem['type'] == 'extra_forbidden':
                known = _known_keys(model, path[:-1])
                close = difflib.get_close_matches(str(path[-1]), known, n=1)
                message = 'unknown key' + (f' (did you mean {close[0]!r}?)' if close else '')
                if known:
                    message += f'; valid: {", ".join(known)}'
            where = f'{source}:{line or "?"}' if root is not None else source
            lines.append(f'{where}: {key}: {message}')
        raise CampaignFileError('\n'.join(lines)) from None


def _protocol_inputs(protocol: str | None, where: str, protocol_file: str = 'campaign') -> dict:
    try:
        return load_protocol(protocol_file, protocol)
    except ProtocolError as error:
        raise CampaignFileError(f'{where}: protocol: {error}') from None


def campaign_settings(protocol: str | None = None, overrides: Mapping[str, Any] | None = None) -> CampaignSettings:
    """Return the settings of campaign ``protocol`` (default: the file's ``default_protocol``) with ``overrides``.

    :raises CampaignFileError: for an unknown protocol, an unknown key or a bad value, naming every key path.
    """
    inputs = _protocol_inputs(protocol, 'campaign settings')
    return _validate(CampaignSettings, _merge(inputs, overrides or {}), 'campaign settings')


def parse_campaign(text: str, source: str = 'campaign file', base: Path | None = None) -> CampaignFile:
    """Validate campaign YAML ``text`` as overrides of its ``protocol``; targets are resolved against ``base``.

    ``kind`` (``cluster``, the default, or ``temperature``) picks the protocol file and the settings model.

    :raises CampaignFileError: with ``source:line: key: problem`` lines, every problem at once.
    """
    try:
        data = load_yaml(text, source)  # refuses repeated keys and alias bombs, with their line
        root = yaml.compose(text)
    except YamlInputError as error:
        raise CampaignFileError(str(error)) from None
    if not isinstance(data, dict):
        raise CampaignFileError(f'{source}: expected a mapping of campaign settings at the top level.')
    kind = data.get('kind', 'cluster')
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f' (did you mean {close[0]!r}?)' if close else ''
        where = f'{source}:{_line_of(root, ("kind",))}'
        raise CampaignFileError(f'{where}: kind: unknown campaign kind {kind!r}{hint}; valid: {", ".join(KINDS)}')
    protocol_file, settings_model, file_model = _kind(kind)
    protocol = data.get('protocol')
    if protocol is not None and not isinstance(protocol, str):
        raise CampaignFileError(f'{source}:{_line_of(root, ("protocol",))}: protocol: give a protocol name.')
    inputs = _protocol_inputs(protocol, f'{source}:{_line_of(root, ("protocol",)) or "?"}', protocol_file)
    overrides = {key: value for key, value in data.items() if key not in ('kind', 'protocol', 'targets')}
    merged = _merge(inputs, {**overrides, 'targets': data.get('targets')})
    validated = _validate(file_model, merged, source, root)
    base = Path.cwd() if base is None else Path(base)
    test_sets = {
        name: (value if isinstance(value, int) or str(value).isdigit() else str((base / value).resolve()))
        for name, value in (overrides.get('test_sets') or {}).items()
    }
    if test_sets:
        overrides = {**overrides, 'test_sets': test_sets}
    dataset = (overrides.get('initial') or {}).get('dataset')
    if isinstance(dataset, str) and not dataset.isdigit():  # a file, relative to the campaign file like targets
        overrides = {**overrides, 'initial': {**overrides['initial'], 'dataset': str((base / dataset).resolve())}}
        validated.initial.dataset = overrides['initial']['dataset']
    return CampaignFile(
        source=source,
        protocol=validated.protocol,
        overrides=overrides,
        settings=settings_model.model_validate(validated.model_dump(exclude={'targets'})),
        targets={target.name: (base / target.structure).resolve() for target in validated.targets},
        kind=kind,
    )


def load_campaign(path: str | Path) -> CampaignFile:
    """Read and validate a campaign file; target paths are relative to the file and must exist."""
    path = Path(path)
    campaign = parse_campaign(path.read_text(), str(path), path.resolve().parent)
    missing = [str(target) for target in campaign.targets.values() if not target.is_file()]
    if missing:
        raise CampaignFileError(f'{path}: target structure file(s) not found (relative to the file): {missing}')
    return campaign
