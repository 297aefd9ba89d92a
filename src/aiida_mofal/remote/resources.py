"""GPUs, partition, QOS and account as settings of a step, turned into the CalcJob options a scheduler reads.

aiida-core's ``core.slurm`` has no GPU field (aiida-core #5612): users hand-write ``#SBATCH --gres`` lines into
``custom_scheduler_commands``. Here a step says ``gpus: N`` (and ``partition``, ``qos``, ``account``) and
:func:`scheduler_options` writes the lines once, for the scheduler of the computer that will run the job:

* ``core.slurm``: ``queue_name`` (``--partition``), ``qos``, ``account`` are aiida-core options; the GPUs
  become ``#SBATCH --gres=<gres>:N`` in ``custom_scheduler_commands`` (``<gres>`` from the computer file's
  partition, default ``gpu``);
* ``core.direct``: no queue, so partition/qos/account are refused; GPUs need no scheduler line (the job sees
  the machine's GPUs) and only switch the device.

:func:`device_for` is the MACE device that goes with the request: ``cuda`` when ``gpus > 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ('GPU_KEYS', 'device_for', 'direct_job_slots', 'job_mpi_processes', 'scheduler_options')

#: the step settings this module turns into options
GPU_KEYS = ('gpus', 'partition', 'qos', 'account')
#: where the computer file's partitions are kept on the AiiDA computer (``Computer.metadata``)
PARTITIONS_METADATA = 'mofal_partitions'


def device_for(gpus: int | None) -> str:
    """Return the torch device of a job that asked for ``gpus`` GPUs."""
    return 'cuda' if gpus else 'cpu'


def _gres_line(gres: str, gpus: int) -> str:
    return f'#SBATCH --gres={gres}:{gpus}'


def scheduler_options(
    request: Mapping[str, Any],
    scheduler: str,
    options: Mapping[str, Any] | None = None,
    partitions: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return ``options`` with the GPUs, partition, QOS and account of ``request`` written in for ``scheduler``.

    ``options`` are CalcJob ``metadata.options``; ``scheduler`` is ``core.slurm`` or ``core.direct``.

    ``partitions`` are the computer's (from its computer file): a GPU request is checked against the GPUs of
    the partition's nodes; a GPU request without a partition goes to the only partition that has GPUs, a CPU
    request without one to the computer file's ``default`` partition.

    :raises ValueError: for a request this scheduler or partition cannot honour, naming the fix.
    """
    result = dict(options or {})
    gpus = int(request.get('gpus') or 0)
    if gpus < 0:
        raise ValueError(f'gpus: {gpus} is negative')
    partition = request.get('partition') or result.get('queue_name')
    partitions = dict(partitions or {})
    if scheduler == 'core.direct':
        asked = [key for key in ('partition', 'qos', 'account') if request.get(key)]
        if asked:
            raise ValueError(f'{", ".join(asked)}: core.direct has no queue; remove them or use a SLURM computer')
        return result
    if scheduler != 'core.slurm':
        if gpus:
            raise ValueError(f'gpus: no GPU lines for scheduler {scheduler}; write custom_scheduler_commands')
        return result
    if gpus and partition is None:
        with_gpus = [name for name, spec in partitions.items() if spec.get('gpus_per_node', 0) > 0]
        if len(with_gpus) == 1:
            partition = with_gpus[0]
    elif partition is None:
        partition = next((name for name, spec in partitions.items() if spec.get('default')), None)
    gres = 'gpu'
    if partition is not None and partitions:
        if partition not in partitions:
            raise ValueError(f'partition: {partition!r} is not a partition of this computer: {sorted(partitions)}')
        spec = partitions[partition]
        gres = spec.get('gres', 'gpu')
        if gpus > spec.get('gpus_per_node', 0):
            raise ValueError(
                f'gpus: {gpus} asked, but nodes of partition {partition!r} have {spec.get("gpus_per_node", 0)}'
            )
    if partition is not None:
        result['queue_name'] = partition
    for key in ('qos', 'account'):
        if request.get(key):
            result[key] = request[key]
    if gpus:
        lines = [line for line in str(result.get('custom_scheduler_commands', '')).splitlines() if line.strip()]
        if any('--gres' in line or '--gpus' in line for line in lines):
            raise ValueError('gpus: custom_scheduler_commands already ask for GPUs; give gpus or those lines')
        result['custom_scheduler_commands'] = '\n'.join([*lines, _gres_line(gres, gpus)])
    return result


def computer_partitions(computer) -> dict[str, dict]:
    """Return the partitions that ``mofal computer setup`` stored on ``computer`` (``{}`` for other computers)."""
    return dict((computer.metadata or {}).get(PARTITIONS_METADATA, {}))


def direct_job_slots(scheduler: str, cores: int | None, resources: Mapping[str, Any]) -> int | None:
    """Return how many jobs of ``resources`` fit side by side on a ``core.direct`` computer of ``cores``, else None.

    ``core.direct`` starts every job at once: eight CP2K jobs of two MPI processes on two cores oversubscribe them,
    and MPI then runs several times slower than the same jobs one after the other. A queueing scheduler (SLURM)
    places jobs itself, so there is no limit to give (None). ``cores`` is the computer's default MPI processes per
    machine (``mofal setup``: this machine's cores); a job that names none takes that many.
    """
    if scheduler != 'core.direct' or not cores:
        return None
    return max(1, cores // job_mpi_processes(resources, cores))


def job_mpi_processes(resources: Mapping[str, Any], default_per_machine: int | None) -> int:
    """Return a job's MPI processes: machines times its processes per machine, else the computer's default."""
    per_machine = resources.get('num_mpiprocs_per_machine') or default_per_machine or 1
    return max(1, int(resources.get('num_machines', 1)) * int(per_machine))
