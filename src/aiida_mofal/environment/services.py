"""The services of the throughput setup: PostgreSQL (a database per profile) and RabbitMQ (a reachable port)."""

from __future__ import annotations

import socket

__all__ = ['create_postgres_database', 'port_open']


def port_open(host: str, port: int, timeout: float = 2.0) -> bool:
    """Return True when something listens on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def create_postgres_database(profile_name: str, host: str, port: int) -> dict:
    """Create a database user and a ``C.UTF-8`` database (no ``en_US.UTF-8`` locale needed); return the storage config.

    :raises ConnectionError: when PostgreSQL is not reachable as user ``postgres``, saying how to fix it.
    """
    import secrets

    import psycopg
    from aiida.manage.configuration.settings import AiiDAConfigDir
    from psycopg import sql

    user = f'aiida_{profile_name}'.replace('-', '_')
    database = user
    password = secrets.token_hex(15)
    try:
        connection = psycopg.connect(host=host, port=port, user='postgres', dbname='postgres', autocommit=True)
    except psycopg.OperationalError as exception:
        raise ConnectionError(
            f'cannot reach PostgreSQL at {host}:{port} as user postgres ({exception}); start the server or '
            'run `mofal setup` without --postgres for the embedded SQLite profile.'
        ) from exception
    with connection:
        exists = connection.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (user,)).fetchone()
        verb = 'ALTER' if exists else 'CREATE'
        connection.execute(sql.SQL(verb + ' USER {} WITH PASSWORD {}').format(sql.Identifier(user), password))
        if not connection.execute('SELECT 1 FROM pg_database WHERE datname = %s', (database,)).fetchone():
            connection.execute(
                sql.SQL(
                    "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' "
                    'TEMPLATE template0'
                ).format(sql.Identifier(database), sql.Identifier(user))
            )
    repository = AiiDAConfigDir.get() / 'repository' / profile_name
    return {
        'database_engine': 'postgresql_psycopg',
        'database_hostname': host,
        'database_port': port,
        'database_name': database,
        'database_username': user,
        'database_password': password,
        'repository_uri': repository.as_uri(),
    }
