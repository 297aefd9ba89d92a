"""The computer file: one YAML document describing one remote (or local) machine and its codes.

``mofal computer setup FILE.yaml`` reads it, validates it here (every problem at once, each with its line in
the file and a did-you-mean for a mistyped key, as the campaign file), then makes the AiiDA computer and the
codes ``cp2k@<label>``, ``lammps@<label>``, ``python-mace@<label>`` (:mod:`.setup`). The campaign then runs
unchanged on that computer: only ``resources.<step>.code`` names the new codes.

Strings may hold ``{local:NAME}``: the value of the environment variable ``NAME`` where ``mofal computer
setup`` runs (e.g. ``{local:VIRTUAL_ENV}`` for a machine that shares this file system). AiiDA's own
``{username}`` in ``work_dir`` is left for AiiDA; ``$VAR`` in prepend text is left for the remote shell.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiida_mofal.campaign.config import _line_of  # one way of pointing at lines, shared
from aiida_mofal.safe_yaml import read_mapping

__all__ = ('CODE_NAMES', 'ComputerConfig', 'ComputerFileError', 'load_computer_file', 'parse_computer_file')

#: the codes a campaign uses, and the CalcJob plugin each runs by default
CODE_NAMES = {'cp2k': 'cp2k', 'lammps': 'lammps.base', 'python-mace': None}
#: transports this project sets up (``core.ssh_async`` is aiida-core 2.9's SSH; ``core.ssh`` is deprecated there)
TRANSPORTS = ('core.ssh_async', 'core.ssh', 'core.local')
SCHEDULERS = ('core.slurm', 'core.direct')
_LOCAL = re.compile(r'\{local:([A-Za-z_][A-Za-z0-9_]*)\}')


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid')


class Partition(_Strict):
    """A scheduler partition (SLURM ``--partition``) and the GPUs each of its nodes has."""

    gpus_per_node: int = Field(0, ge=0)
    gres: str = Field('gpu', pattern=r'^[A-Za-z0-9_:-]+$', description='GRES name: gpu, or gpu:a100 for a type')
    max_walltime: int | None = Field(None, gt=0, description='seconds')
    default: bool = False


class Code(_Strict):
    """One code on the computer: the program, whether it runs under MPI, what the job script runs before it."""

    executable: str = Field(min_length=1, description='absolute path, or a command name found on the remote')
    with_mpi: bool | None = None
    prepend_text: str = ''
    append_text: str = ''
    description: str = ''


class Ssh(_Strict):
    """How ``core.ssh_async`` reaches the machine (aiida-core 2.9's names); ``host`` defaults to the hostname.

    The user, key, port and any ProxyJump live in ``~/.ssh/config`` under the host alias, as for ``ssh HOST``.
    """

    host: str | None = None
    backend: Literal['asyncssh', 'openssh'] = 'asyncssh'
    max_io_allowed: int = Field(8, ge=1)
    data_node_host: str | None = Field(None, description='a data-transfer node for file copies, if the site has one')
    authentication_script: str | None = Field(None, description='local executable run before connecting (2FA)')
    use_sftp: bool = Field(True, description='false: scp -O (openssh backend only), for sites without SFTP')


class ComputerConfig(_Strict):
    """Every setting of one computer file (see ``examples/computers/``)."""

    label: str = Field(pattern=r'^[A-Za-z0-9_.-]+$')
    description: str = ''
    hostname: str = Field(min_length=1, description='host name or an SSH alias of ~/.ssh/config')
    transport: Literal['core.ssh_async', 'core.ssh', 'core.local'] = 'core.ssh_async'
    scheduler: Literal['core.slurm', 'core.direct']
    work_dir: str = Field(min_length=2, description='absolute path on the remote; may hold {username}')
    mpirun: list[str] | str = Field(description="e.g. 'srun' or 'mpirun -np {tot_num_mpiprocs}'")
    mpiprocs_per_machine: int = Field(ge=1)
    shebang: str = '#!/bin/bash'
    prepend_text: str = Field('', description='run before every job on this computer (modules, exports)')
    use_login_shell: bool = True
    safe_interval: float = Field(1.0, ge=0.0, description='seconds between two connections')
    poll_interval: float = Field(5.0, ge=0.0, description='seconds between two scheduler polls')
    ssh: Ssh = Field(default_factory=Ssh)
    partitions: dict[str, Partition] = Field(default_factory=dict)
    codes: dict[str, Code] = Field(min_length=1)

    @field_validator('work_dir')
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith('/'):
            raise ValueError('give an absolute path on the remote machine')
        return value

    @field_validator('mpirun')
    @classmethod
    def _mpirun(cls, value: list[str] | str) -> list[str]:
        words = value.split() if isinstance(value, str) else list(value)
        if not words:
            raise ValueError('give the MPI launcher, e.g. srun or mpirun -np {tot_num_mpiprocs}')
        return words

    @field_validator('codes')
    @classmethod
    def _code_names(cls, value: dict[str, Code]) -> dict[str, Code]:
        unknown = sorted(set(value) - set(CODE_NAMES))
        if unknown:
            raise ValueError(f'unknown code(s) {unknown}; the campaign uses: {", ".join(CODE_NAMES)}')
        return value

    @model_validator(mode='after')
    def _consistent(self) -> ComputerConfig:
        defaults = [name for name, partition in self.partitions.items() if partition.default]
        if len(defaults) > 1:
            raise ValueError(f'partitions: only one may be the default; {defaults} are')
        if not self.ssh.use_sftp and self.ssh.backend != 'openssh':
            raise ValueError('ssh.use_sftp: false needs ssh.backend: openssh (asyncssh copies files over SFTP)')
        if self.transport == 'core.local' and self.hostname != 'localhost':
            raise ValueError('transport core.local runs on this machine: hostname must be localhost')
        return self

    def partition_for(self, name: str | None) -> tuple[str | None, Partition | None]:
        """Return the partition ``name`` (or the default one) and its settings; ``(None, None)`` when none."""
        if name is None:
            name = next((n for n, p in self.partitions.items() if p.default), None)
        return name, self.partitions.get(name) if name else None


@dataclass(frozen=True)
class ComputerFile:
    """A validated computer file: where it came from and its settings."""

    source: str
    config: ComputerConfig


class ComputerFileError(ValueError):
    """A computer file that cannot be set up; the message lists every problem with its line."""


def _duplicate_keys(node: yaml.Node, path: tuple = ()) -> list[tuple[int, str]]:
    """Return ``(line, key path)`` of every repeated key (PyYAML keeps the last one silently)."""
    found = []
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                found.append((key.start_mark.line + 1, '.'.join((*path, name))))
            seen.add(name)
            found.extend(_duplicate_keys(value, (*path, name)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, (*path, str(index))))
    return found


def _expand_local(value, missing: set[str]):
    """Replace ``{local:NAME}`` in every string of ``value`` by the environment variable ``NAME``."""
    if isinstance(value, str):

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name not in os.environ:
                missing.add(name)
                return match.group(0)
            return os.environ[name]

        return _LOCAL.sub(replace, value)
    if isinstance(value, dict):
        return {key: _expand_local(item, missing) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_local(item, missing) for item in value]
    return value


def _known_keys(path: tuple) -> list[str]:
    """Return the keys valid at ``path`` of a computer file (a mapping's own keys, e.g. code names, are passed)."""
    import typing

    model: type[BaseModel] = ComputerConfig
    parts = list(path)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return []
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            if parts:
                parts.pop(0)  # the mapping's own key: a code or partition name
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _problems(error, root: yaml.Node, source: str) -> list[str]:
    import difflib

    lines = []
    for problem in error.errors():
        path = tuple(problem['loc'])
        key = '.'.join(str(part) for part in path) or '(top level)'
        message = problem['msg']
        if problem['type'] == 'extra_forbidden':
            known = _known_keys(path[:-1])
            close = difflib.get_close_matches(str(path[-1]), known, n=1)
            message = 'unknown key' + (f' (did you mean {close[0]!r}?)' if close else '')
            if known:
                message += f'; valid: {", ".join(known)}'
        elif problem['type'] == 'literal_error':
            close = difflib.get_close_matches(str(problem.get('input')), TRANSPORTS + SCHEDULERS, n=1)
            message += f' (did you mean {close[0]!r}?)' if close else ''
        lines.append(f'{source}:{_line_of(root, path) or "?"}: {key}: {message}')
    return lines


def parse_computer_file(text: str, source: str = 'computer file') -> ComputerFile:
    """Validate computer YAML ``text``.

    :raises ComputerFileError: with ``source:line: key: problem`` lines, every problem at once.
    """
    from pydantic import ValidationError

    root, data = read_mapping(text, source, 'computer settings', ComputerFileError)
    problems = [
        f'{source}:{line}: {key}: repeated key (YAML would keep only the last)' for line, key in _duplicate_keys(root)
    ]
    missing: set[str] = set()
    data = _expand_local(data, missing)
    for name in sorted(missing):
        line = next(i for i, text_line in enumerate(text.splitlines(), 1) if f'{{local:{name}}}' in text_line)
        problems.append(f'{source}:{line}: {{local:{name}}}: environment variable {name} is not set here')
    try:
        config = ComputerConfig.model_validate(data)
    except ValidationError as error:
        problems += _problems(error, root, source)
        config = None
    if problems:
        raise ComputerFileError('\n'.join(problems))
    return ComputerFile(source=source, config=config)


def load_computer_file(path: str | Path) -> ComputerFile:
    """Read and validate a computer file."""
    path = Path(path)
    if not path.is_file():
        raise ComputerFileError(f'{path}: no such file')
    return parse_computer_file(path.read_text(), str(path))
