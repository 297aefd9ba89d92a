"""The settings of a temperature campaign (``kind: temperature``): the paper's Figure 4 as one validated document.

A temperature campaign (Sharma & Sanvito; ``docs/guide/temperature.md``) grows the training set of one framework
by MD at rising temperatures: step 0 CBAD-selects random perturbations of the experimental structure; step k runs
N independent NPT runs at T_k with the model of step k−1 and keeps at most one configuration per run, chosen by
CBAD against the training set's occupancy. Its settings are a protocol of ``protocols/temperature.yaml`` with the
campaign file's sections merged over it; :mod:`aiida_mofal.campaign.config` parses the file (line-pointing errors,
did-you-mean) with the models defined here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .config import Resource, ScanResource, Step, Target, Train, _merge, _protocol_inputs, _Strict, _validate

__all__ = ('TemperatureSettings', 'temperature_settings', 'temperatures')

PROTOCOL_FILE = 'temperature'


class Perturbations(_Strict):
    """Step 0: random perturbations of the experimental structure, offered to CBAD in order."""

    candidates: int = Field(ge=1)
    rattle: float = Field(ge=0.0, le=0.5, description='Å, Gaussian')
    strain: float = Field(ge=0.0, le=0.2, description='max |ε| of a random symmetric cell strain')
    seed: int


class Selection(_Strict):
    """CBAD resolutions per family (``docs/guide/cbad.md``); missing families take the defaults."""

    resolutions: dict[str, float] = Field(default_factory=dict)

    @field_validator('resolutions')
    @classmethod
    def _known(cls, value):
        from aiida_mofal.selection.cbad import check_resolutions

        check_resolutions(value)  # CbadError is a ValueError: unknown family or Δ <= 0
        return value


class Temperatures(_Strict):
    """The temperature of step k is ``start + (k − 1) · step`` while it does not exceed ``stop`` (T_max)."""

    start: float = Field(gt=0.0)
    step: float = Field(gt=0.0)
    stop: float = Field(gt=0.0)

    @model_validator(mode='after')
    def _ordered(self):
        if self.start > self.stop:
            raise ValueError(f'start ({self.start} K) is above stop ({self.stop} K): no temperature step would run')
        return self


class Explore(Step):
    """N independent NPT runs per step, in one MD job (one walk per run)."""

    engine: Literal['ase', 'lammps-python', 'lammps-mliap']
    runs: int = Field(ge=1)
    steps: int | None = Field(ge=1, description='overrides the protocol schedule length')
    start_rattle: float = Field(ge=0.0, le=0.5, description='Å, the random displacement of each start')
    pressure: float
    temperatures: Temperatures


class TestSet(_Strict):
    """The test set: ``frames`` evenly spaced frames of one MD ramp run with model 0, labelled once."""

    frames: int = Field(ge=0)
    steps: int = Field(ge=1)
    temperature_range: tuple[float, float]

    @field_validator('temperature_range')
    @classmethod
    def _positive(cls, value):
        if min(value) <= 0:
            raise ValueError('temperatures must be > 0 K')
        return value


class FinalRandom(_Strict):
    """After the last step: ``random`` frames drawn at random from one MD ramp run with the last model, added.

    The paper (Sharma & Sanvito, after Figure 4) ends its MOF-5 campaign this way: 487 CBAD configurations from
    100 to 1000 K, then "we randomly select additional ~100 configurations" from the 10 → 1000 K ramp run with
    the final SNAP (596 in all), and the final model is trained on them. 0 skips the step.
    """

    random: int = Field(0, ge=0, description='configurations drawn at random and labelled (the paper: ~100)')
    steps: int | None = Field(None, ge=1, description='MD steps of the ramp; null: those of the test ramp')
    temperature_range: tuple[float, float] | None = Field(
        None, description="K; null: the test ramp's low end up to the last step's temperature"
    )

    @field_validator('temperature_range')
    @classmethod
    def _positive(cls, value):
        if value is not None and min(value) <= 0:
            raise ValueError('temperatures must be > 0 K')
        return value


class Resources(_Strict):
    """Codes per step: CP2K for labels, Python+MACE for training and MD; optionally one for the evaluation.

    Without ``evaluate`` each step's model is evaluated on the test set in the process that runs the campaign
    (right for small systems); with it, as a ``mofal.mace.evaluate`` job on that code (``settings``: device and
    batch sizes of the job).
    """

    cp2k: Resource
    train: Resource
    md: Resource
    evaluate: ScanResource | None = None


class TemperatureSettings(_Strict):
    """Every setting of one temperature campaign: a protocol of ``protocols/temperature.yaml`` with overrides."""

    protocol: str
    name: str
    initial: Perturbations
    selection: Selection
    label: Step
    train: Train
    explore: Explore
    test: TestSet
    final: FinalRandom = Field(default_factory=FinalRandom)  # settings stored before it: no final step
    resources: Resources


class TemperatureFileModel(TemperatureSettings):
    """What a ``kind: temperature`` file may hold: one target (the framework), a protocol, overrides."""

    targets: list[Target] = Field(min_length=1, max_length=1, description='the one framework to learn')


def temperature_settings(protocol: str | None = None, overrides: Mapping[str, Any] | None = None):
    """Return the settings of temperature protocol ``protocol`` (default ``demo``) with ``overrides`` validated.

    :raises CampaignFileError: for an unknown protocol, an unknown key or a bad value, naming every key path.
    """
    inputs = _protocol_inputs(protocol, 'temperature campaign settings', PROTOCOL_FILE)
    return _validate(TemperatureSettings, _merge(inputs, overrides or {}), 'temperature campaign settings')


def temperatures(settings: Mapping) -> list[float]:
    """Return the temperatures (K) of steps 1, 2, ... of ``settings`` (a dumped :class:`TemperatureSettings`)."""
    ladder = settings['explore']['temperatures']
    values, k = [], 0
    while (value := ladder['start'] + k * ladder['step']) <= ladder['stop'] + 1e-9:
        values.append(float(value))
        k += 1
    return values
