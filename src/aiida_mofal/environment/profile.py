"""The AiiDA profile of ``mofal setup``: SQLite + built-in ZeroMQ broker by default, or PostgreSQL + RabbitMQ."""

from __future__ import annotations

from pathlib import Path

from .localhost import ensure_codes, ensure_localhost
from .services import create_postgres_database, port_open

__all__ = ['DEFAULT_PROFILE', 'RABBITMQ', 'setup']

DEFAULT_PROFILE = 'mofal'
RABBITMQ = {
    'broker_protocol': 'amqp',
    'broker_username': 'guest',
    'broker_password': 'guest',
    'broker_host': '127.0.0.1',
    'broker_port': 5672,
    'broker_virtual_host': '',
}


def _storage_and_broker(config, name: str, postgres: bool) -> tuple[dict, str, dict]:
    """Return (storage config, broker backend, broker config) of a new profile, creating the database if needed."""
    if not postgres:
        from aiida.plugins import BrokerFactory

        storage_config = {'filepath': str(Path(config.dirpath) / 'storage' / name)}
        return storage_config, 'core.zeromq', BrokerFactory('core.zeromq').get_default_config()
    if not port_open(RABBITMQ['broker_host'], RABBITMQ['broker_port']):
        raise ConnectionError(
            'RabbitMQ is not reachable on 127.0.0.1:5672; start it (`rabbitmq-server -detached`) or run '
            '`mofal setup` without --postgres (built-in ZeroMQ broker).'
        )
    return create_postgres_database(name, '127.0.0.1', 5432), 'core.rabbitmq', dict(RABBITMQ)


def _ensure_profile(name: str, postgres: bool, email: str, report: list[str]) -> tuple:
    from aiida.manage.configuration import create_profile, get_config, load_profile

    config = get_config(create=True)
    wanted_storage = 'core.psql_dos' if postgres else 'core.sqlite_dos'
    if name in config.profile_names:
        profile = config.get_profile(name)
        if profile.storage_backend != wanted_storage:
            raise RuntimeError(
                f'profile {name!r} exists with storage {profile.storage_backend}, not {wanted_storage}; '
                'choose another name with --name, or delete it with `verdi profile delete`.'
            )
        report.append(f'profile {name!r} exists ({profile.storage_backend}, {profile.process_control_backend})')
        created = False
    else:
        storage_config, broker, broker_config = _storage_and_broker(config, name, postgres)
        profile = create_profile(
            config,
            name=name,
            email=email,
            storage_backend=wanted_storage,
            storage_config=storage_config,
            broker_backend=broker,
            broker_config=broker_config,
        )
        config.set_option('runner.poll.interval', 1, scope=name)
        report.append(f'profile {name!r} created ({wanted_storage}, {broker})')
        created = True
    if config.default_profile_name is None or created:
        config.set_default_profile(name, overwrite=True)
    config.store()
    load_profile(name, allow_switch=True)
    return profile, created, config


def setup(
    name: str = DEFAULT_PROFILE,
    postgres: bool = False,
    email: str = 'mofal@localhost',
    mpiprocs: int | None = None,
) -> dict:
    """Create or reuse a profile, the ``localhost`` computer and codes for CP2K, LAMMPS and MACE's Python.

    Idempotent: what exists is reused, never recreated. Returns a summary (what ``--json`` prints).
    """
    report: list[str] = []
    profile, created, config = _ensure_profile(name, postgres, email, report)
    computer = ensure_localhost(Path(config.dirpath) / 'scratch' / name, mpiprocs, report)
    codes = ensure_codes(computer, report)
    return {
        'profile': profile.name,
        'created': created,
        'storage': profile.storage_backend,
        'broker': profile.process_control_backend,
        'config_dir': str(config.dirpath),
        'computer': computer.label,
        'codes': {label: code.full_label if code else None for label, code in codes.items()},
        'report': report,
    }
