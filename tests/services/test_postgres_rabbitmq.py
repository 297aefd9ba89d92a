"""The throughput setup: `mofal setup --postgres` (PostgreSQL + RabbitMQ) and a real CP2K job via the daemon."""

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=2):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(
        not (_reachable(5432) and _reachable(5672)),
        reason='PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672) are not both running on this machine',
    ),
]


def _drop(database: str, user: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host='127.0.0.1', port=5432, user='postgres', dbname='postgres', autocommit=True) as conn:
        conn.execute(sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)').format(sql.Identifier(database)))
        conn.execute(sql.SQL('DROP ROLE IF EXISTS {}').format(sql.Identifier(user)))


def test_postgres_profile_runs_cp2k_through_the_daemon(tmp_path):
    name = f'svc{secrets.token_hex(4)}'
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path), 'PATH': f'{BIN}:{os.environ["PATH"]}'}

    def run(*args, timeout=300):
        return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)

    setup = run(str(BIN / 'mofal'), 'setup', '--postgres', '--name', name, '--json')
    assert setup.returncode == 0, setup.stderr
    summary = json.loads(setup.stdout)
    database = user = f'aiida_{name}'
    try:
        assert summary['storage'] == 'core.psql_dos' and summary['broker'] == 'core.rabbitmq'
        doctor = json.loads(run(str(BIN / 'mofal'), '-p', name, 'doctor', '--json').stdout)
        assert doctor['checks']['broker']['ok'] is True
        start = run(str(BIN / 'verdi'), '-p', name, 'daemon', 'start', '1')
        assert start.returncode == 0, start.stdout + start.stderr
        smoke = run(str(BIN / 'python'), 'examples/cp2k_smoke.py', '--daemon', '--profile', name, timeout=600)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert 'exit_status=0' in smoke.stdout
    finally:
        run(str(BIN / 'verdi'), '-p', name, 'daemon', 'stop')
        _drop(database, user)
