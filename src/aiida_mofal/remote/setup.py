"""Make the AiiDA computer and its codes from a validated computer file, and check them on the remote.

Safe to run again: a computer or code that exists with the same settings is reused; one that exists with
different settings is refused (naming what differs and the ``verdi`` command that removes it), because codes
and past calculations point at it and silently changing them would rewrite what the graph says ran where.
"""

from __future__ import annotations

import shlex
from typing import Any

from .config import CODE_NAMES, ComputerConfig
from .resources import PARTITIONS_METADATA

__all__ = ('check_computer', 'setup_computer')


def _computer_fields(config: ComputerConfig) -> dict[str, Any]:
    return {
        'hostname': config.hostname,
        'transport_type': config.transport,
        'scheduler_type': config.scheduler,
        'workdir': config.work_dir,
    }


def _auth_params(config: ComputerConfig) -> dict[str, Any]:
    """Return the ``configure`` parameters of the computer's transport (aiida-core 2.9 names)."""
    params: dict[str, Any] = {'safe_interval': config.safe_interval, 'use_login_shell': config.use_login_shell}
    if config.transport == 'core.ssh_async':
        params.update(
            host=config.ssh.host or config.hostname,
            backend=config.ssh.backend,
            max_io_allowed=config.ssh.max_io_allowed,
            data_node_host=config.ssh.data_node_host or 'None',
            authentication_script=config.ssh.authentication_script or 'None',
            use_sftp=config.ssh.use_sftp,
        )
    elif config.transport == 'core.ssh':
        params.update(look_for_keys=True, load_system_host_keys=True, key_policy='RejectPolicy')
    return params


def _ensure_computer(config: ComputerConfig, report: list[str]):
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    fields = _computer_fields(config)
    try:
        computer = orm.load_computer(config.label)
    except NotExistent:
        computer = orm.Computer(label=config.label, description=config.description, **fields)
        computer.set_mpirun_command(config.mpirun)
        computer.set_default_mpiprocs_per_machine(config.mpiprocs_per_machine)
        computer.set_shebang(config.shebang)
        computer.set_prepend_text(config.prepend_text)
        computer.store()
        report.append(f'computer {config.label} created ({config.transport}, {config.scheduler}, {config.hostname})')
    else:
        stored = {
            'hostname': computer.hostname,
            'transport_type': computer.transport_type,
            'scheduler_type': computer.scheduler_type,
            'workdir': computer.get_workdir(),
        }
        differ = {key: (stored[key], value) for key, value in fields.items() if stored[key] != value}
        if differ:
            text = ', '.join(f'{key}: {old!r} stored, {new!r} in the file' for key, (old, new) in differ.items())
            raise ValueError(
                f'computer {config.label} exists with other settings ({text}); give the file another label, '
                f'or remove the old one first: verdi computer delete {config.label}'
            )
        computer.set_mpirun_command(config.mpirun)
        computer.set_default_mpiprocs_per_machine(config.mpiprocs_per_machine)
        computer.set_prepend_text(config.prepend_text)
        report.append(f'computer {config.label} exists')
    metadata = dict(computer.metadata or {})
    metadata[PARTITIONS_METADATA] = {name: part.model_dump() for name, part in config.partitions.items()}
    computer.metadata = metadata
    computer.configure(**_auth_params(config))
    computer.set_minimum_job_poll_interval(config.poll_interval)
    return computer


def _find_executable(transport, code, prepend_text: str) -> str | None:
    """Return the absolute path of ``code.executable`` on the remote (looked up after its prepend text)."""
    executable = code.executable
    script = f'{prepend_text}\n{code.prepend_text}\ncommand -v {shlex.quote(executable)}'
    status, stdout, _ = transport.exec_command_wait(f'bash -c {shlex.quote(script)}')
    lines = stdout.strip().splitlines()
    return lines[-1] if status == 0 and lines and lines[-1].startswith('/') else None


def _ensure_codes(config: ComputerConfig, computer, transport, report: list[str]) -> dict[str, Any]:
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    codes = {}
    for name, code in config.codes.items():
        full = f'{name}@{config.label}'
        path = _find_executable(transport, code, config.prepend_text)
        if path is None:
            raise ValueError(
                f'codes.{name}.executable: {code.executable!r} is not found on {config.hostname} '
                '(after the prepend text): install it there or give its absolute path'
            )
        with_mpi = code.with_mpi if code.with_mpi is not None else name == 'cp2k'
        try:
            existing = orm.load_code(full)
        except NotExistent:
            existing = None
        if existing is not None:
            stored = str(existing.filepath_executable)
            if stored != path or existing.prepend_text != code.prepend_text:
                raise ValueError(
                    f'code {full} exists with another executable or prepend text ({stored}); '
                    f'remove it first: verdi code delete {full}'
                )
            codes[name] = existing
            report.append(f'code {full} exists ({path})')
            continue
        codes[name] = orm.InstalledCode(
            label=name,
            computer=computer,
            filepath_executable=path,
            default_calc_job_plugin=CODE_NAMES[name],
            with_mpi=with_mpi,
            prepend_text=code.prepend_text,
            append_text=code.append_text,
            description=code.description or f'{name} on {config.label}',
        ).store()
        report.append(f'code {full} created ({path})')
    return codes


def _open_transport(computer):
    """Return the computer's transport, opened.

    aiida-core 2.9 runs ``core.ssh_async``'s blocking calls on the global runner's event loop, and making that
    runner connects to the broker; with the built-in ZeroMQ broker not running (no daemon) that fails after
    10 s. A command that only talks to the remote needs no broker: the runner it makes has no communicator
    (an existing runner, e.g. in the daemon or a test session, is used as it is).
    """
    from aiida.manage import get_manager

    get_manager().get_runner(communicator=None)
    transport = computer.get_transport()
    transport.open()
    return transport


def setup_computer(config: ComputerConfig) -> dict[str, Any]:
    """Create (or reuse) the computer and codes of ``config``; return a summary for ``mofal computer setup``.

    The computer is configured and opened once, so that a wrong host, key or scheduler shows here and not in
    the first job: the executables of the codes are looked up on the remote.
    """
    report: list[str] = []
    computer = _ensure_computer(config, report)
    transport = _open_transport(computer)
    try:
        # Made here, once: several jobs uploaded at the same time each try to create it, and core.ssh_async's
        # check-then-create in aiida-core 2.9.4 then fails the later ones ("Directory already exists").
        workdir = computer.get_workdir().format(username=transport.whoami())
        transport.makedirs(workdir, ignore_existing=True)
        report.append(f'work directory {workdir} on {config.hostname}')
        codes = _ensure_codes(config, computer, transport, report)
    finally:
        transport.close()
    return {
        'computer': config.label,
        'codes': {name: code.full_label for name, code in codes.items()},
        'report': report,
    }


def check_computer(computer) -> dict[str, Any]:
    """Check one computer from here: the connection opens, the scheduler answers, every code's file exists.

    Returns ``{'connection': (ok, value), 'scheduler': (ok, value), 'code:<label>': (ok, value), ...}``.
    """
    from aiida import orm

    checks: dict[str, tuple[bool, Any]] = {}
    if not computer.is_configured:
        return {
            'connection': (
                False,
                f'not configured: verdi computer configure {computer.transport_type} {computer.label}',
            )
        }
    try:
        transport = _open_transport(computer)
    except Exception as exception:  # noqa: BLE001 -- any failure to connect is the finding
        return {'connection': (False, f'{type(exception).__name__}: {exception}')}
    try:
        checks['connection'] = (True, computer.hostname)
        scheduler = computer.get_scheduler()
        scheduler.set_transport(transport)
        try:
            jobs = scheduler.get_jobs(as_dict=True)
            checks['scheduler'] = (True, f'{computer.scheduler_type}: {len(jobs)} job(s) listed')
        except Exception as exception:  # noqa: BLE001
            checks['scheduler'] = (False, f'{computer.scheduler_type}: {exception}')
        codes = orm.QueryBuilder().append(orm.Computer, filters={'id': computer.pk}, tag='c')
        codes = codes.append(orm.InstalledCode, with_computer='c').all(flat=True)
        for code in codes:
            path = str(code.filepath_executable)
            checks[f'code:{code.full_label}'] = (transport.isfile(path), path)
    finally:
        transport.close()
    return checks
