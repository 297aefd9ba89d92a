"""The files of one MD job: ``md_input.json`` and a directory per walk, as the driver ``md_run.py`` reads them.

One writer for the ``mofal.md`` CalcJob (into its sandbox folder) and for everything that runs the driver without
AiiDA (the engine tests, ``tests/parsers/fixtures/md/make_fixtures.py``), so that both give the driver the same job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aiida_mofal.md import schedule

__all__ = ['CONFIG', 'RESTART', 'STRUCTURE', 'walk_directory', 'write_job']

CONFIG = 'md_input.json'
STRUCTURE = 'structure.npz'
RESTART = 'start.npz'


def walk_directory(position: int) -> str:
    """Return the directory of the walk at ``position`` in the job (the order in which the driver runs them)."""
    return f'walk_{position}'


def write_job(directory: str | Path, engine: str, walks: Sequence[Mapping[str, Any]], **config: Any) -> dict:
    """Write the job's walks and configuration into ``directory``; return the configuration.

    :param walks: per walk ``index``, ``atoms`` (ASE ``Atoms``), ``settings`` (validated, or ``None`` for a ReaxFF
        minimisation only) and ``restart`` (whether a ``restart.npz`` is put at ``walk_<k>/start.npz``).
    :param config: the engine's keys (``model_file``, ``dtype``, ``device``, ``torch_threads``, ``model_format``; or
        ``reaxff``) and ``walltime_seconds``.
    """
    directory = Path(directory)
    entries = []
    for position, walk in enumerate(walks):
        name = walk_directory(position)
        (directory / name).mkdir(parents=True, exist_ok=True)
        atoms, settings = walk['atoms'], walk['settings']
        np.savez(directory / name / STRUCTURE, numbers=atoms.numbers, positions=atoms.positions,
                 cell=atoms.cell.array, pbc=atoms.pbc)  # fmt: skip
        entries.append({
            'index': int(walk['index']),
            'directory': name,
            'structure_file': f'{name}/{STRUCTURE}',
            'settings': settings,
            'restart_file': f'{name}/{RESTART}' if walk.get('restart') else None,
            'max_temperature': schedule.max_temperature(settings) if settings else 0.0,
        })  # fmt: skip
    content = {'engine': engine, 'walks': entries, 'walltime_seconds': None, **config}
    (directory / CONFIG).write_text(json.dumps(content, indent=1))
    return content
