"""Run a process in the foreground so that Ctrl-C ends it cleanly (issue 18, class 4).

AiiDA's own foreground runner kills the process *inside* the SIGINT handler. The signal lands wherever the
interpreter is, often in the middle of a database commit; the kill then writes to a session that is half way
through that commit, every transport task fails with ``This session is in 'prepared' state`` and retries with
exponential back-off, and the command hangs for minutes printing tracebacks, while the engines (``mpirun``,
``cp2k``) of the local jobs keep running, because the direct scheduler's ``kill`` reaches only the job script.

:func:`run_foreground` instead only *schedules* the kill on the event loop from the signal handler, so it runs
between two steps of the process; once the process has stopped it ends what is left of the local jobs' engines
(every process whose working directory is a job's remote folder on this machine) and says what was left and how
to go on. A second Ctrl-C ends the engines and exits at once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ('end_local_engines', 'foreground_runner', 'run_foreground')

INTERRUPTED = 130  # the exit status of a command stopped by SIGINT


def _local_workdirs(node) -> list[Path]:
    """Return the remote folders, on this machine, of the CalcJobs below ``node`` (and ``node`` itself)."""
    from aiida import orm

    jobs = [node] if isinstance(node, orm.CalcJobNode) else []
    jobs += [child for child in getattr(node, 'called_descendants', []) if isinstance(child, orm.CalcJobNode)]
    folders = []
    for job in jobs:
        workdir = job.get_remote_workdir()
        try:
            local = job.computer is not None and job.computer.transport_type == 'core.local'
        except Exception:  # noqa: BLE001 -- no computer: nothing runs here
            local = False
        if workdir and local:
            folders.append(Path(workdir).resolve())
    return folders


def end_local_engines(folders: list[Path], grace: float = 3.0) -> list[int]:
    """Terminate (then kill) every process whose working directory lies in one of ``folders``; return their PIDs.

    The direct scheduler starts a job as a detached ``bash`` script; killing that script leaves ``mpirun`` and the
    engine running, re-parented to init. They are found by their working directory, which is the job's folder.
    """
    import psutil

    if not folders:
        return []
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            cwd = Path(process.cwd()).resolve()
        except (psutil.Error, OSError):
            continue
        if any(cwd == folder or folder in cwd.parents for folder in folders):
            found.append(process)
    for process in found:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(found, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    return [process.pid for process in found]


def _what_was_left(node, ended: list[int]) -> str:
    engines = f'; ended {len(ended)} engine process(es) of its local jobs' if ended else ''
    return (
        f'interrupted: {node.process_label}<{node.pk}> was killed{engines}. What finished before is stored '
        f'(`verdi process list -a -p 1`, `verdi process show {node.pk}`); its remote folders are kept. To go on, run '
        'the same command again (with `verdi config set caching.default_enabled True` finished jobs are reused), '
        'or use --daemon so that a run survives closing the terminal.'
    )


def foreground_runner():
    """Return the runner for a foreground run: with the broker's communicator when the broker is up, else none.

    aiida-core 2.9's built-in ZeroMQ broker is a service the daemon starts; without a daemon, making the usual
    runner waits 10 s for it and raises ``ConnectionError``, so every foreground command of a fresh profile (the
    README's ``make demo`` included) would end in that traceback. A foreground run needs no broker: its children
    run on the same event loop. With a communicator, ``verdi process kill`` from another terminal reaches it.
    """
    from aiida.manage import get_manager

    manager = get_manager()
    broker = manager.get_broker()
    if broker is None or getattr(broker, 'check_service_reachable', lambda: True)():
        try:
            return manager.get_runner()
        except ConnectionError:  # RabbitMQ down, or the ZeroMQ service just went: run without it
            pass
    return manager.get_runner(communicator=None)


def run_foreground(builder):
    """Run ``builder`` to the end in this process; on Ctrl-C kill it cleanly and raise ``SystemExit(130)``.

    :returns: ``(outputs, node)`` as ``aiida.engine.run_get_node``.
    """
    from aiida.cmdline.utils import echo
    from aiida.engine import utils as engine_utils
    from plumpy.exceptions import KilledError

    runner = foreground_runner()
    interrupts: list[int] = []
    with engine_utils.loop_scope(runner.loop):
        process = runner.instantiate_process(builder)

        def stop_now() -> None:
            ended = end_local_engines(_local_workdirs(process.node), grace=1.0)
            echo.echo_error(_what_was_left(process.node, ended) + ' (stopped at once: the process may still read '
                            '"running"; `mofal doctor` says how to end it)')  # fmt: skip
            os._exit(INTERRUPTED)

        def on_interrupt(signum, _frame) -> None:
            interrupts.append(signum)
            if len(interrupts) > 1:
                stop_now()
            echo.echo_warning('stopping: killing the process and its jobs (Ctrl-C again to quit at once)', err=True)
            runner.loop.call_soon_threadsafe(
                lambda: process.kill(msg_text='Killed by the user (Ctrl-C in the foreground)')
            )

        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for sig in previous:
                signal.signal(sig, on_interrupt)
            process.execute()
        except KilledError:  # the kill this handler asked for: reported below, not a traceback
            if not interrupts:
                raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if interrupts:
        ended = end_local_engines(_local_workdirs(process.node))
        echo.echo_error(_what_was_left(process.node, ended))
        raise SystemExit(INTERRUPTED)
    return process.outputs, process.node
