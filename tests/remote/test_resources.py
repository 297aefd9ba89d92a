"""GPU requests as scheduler lines (the options, the submit scripts SLURM would really get), and direct-job slots."""

import pytest

from aiida_mofal.remote.resources import device_for, direct_job_slots, scheduler_options

PARTITIONS = {'cpu': {'gpus_per_node': 0, 'default': True}, 'gpu': {'gpus_per_node': 4, 'gres': 'gpu:a100'}}


def test_gpus_become_a_gres_line_on_the_only_gpu_partition():
    options = scheduler_options({'gpus': 2, 'qos': 'normal', 'account': 'mofs'}, 'core.slurm', {}, PARTITIONS)
    assert options == {
        'queue_name': 'gpu',
        'qos': 'normal',
        'account': 'mofs',
        'custom_scheduler_commands': '#SBATCH --gres=gpu:a100:2',
    }
    assert device_for(2) == 'cuda' and device_for(0) == 'cpu'


def test_cpu_request_adds_no_gpu_line_and_keeps_other_commands():
    given = {'custom_scheduler_commands': '#SBATCH --exclusive', 'max_wallclock_seconds': 600}
    options = scheduler_options({'gpus': 0, 'partition': 'cpu'}, 'core.slurm', given, PARTITIONS)
    assert options == {**given, 'queue_name': 'cpu'}
    assert scheduler_options({}, 'core.slurm', {}, PARTITIONS) == {'queue_name': 'cpu'}  # the default partition
    merged = scheduler_options({'gpus': 1}, 'core.slurm', given, {})
    assert merged['custom_scheduler_commands'] == '#SBATCH --exclusive\n#SBATCH --gres=gpu:1'


@pytest.mark.parametrize(
    ('request_', 'scheduler', 'options', 'match'),
    [
        ({'gpus': 8, 'partition': 'gpu'}, 'core.slurm', {}, "nodes of partition 'gpu' have 4"),
        ({'gpus': 1, 'partition': 'gpus'}, 'core.slurm', {}, "'gpus' is not a partition of this computer"),
        ({'gpus': 1}, 'core.slurm', {'custom_scheduler_commands': '#SBATCH --gres=gpu:1'}, 'already ask for GPUs'),
        ({'partition': 'gpu'}, 'core.direct', {}, 'core.direct has no queue'),
        ({'gpus': 1}, 'core.pbspro', {}, 'no GPU lines for scheduler core.pbspro'),
    ],
)
def test_requests_that_cannot_be_honoured_are_refused(request_, scheduler, options, match):
    with pytest.raises(ValueError, match=match):
        scheduler_options(request_, scheduler, options, PARTITIONS)


def test_direct_scheduler_gpu_request_only_switches_the_device():
    assert scheduler_options({'gpus': 1}, 'core.direct', {'withmpi': False}) == {'withmpi': False}


@pytest.mark.parametrize(
    ('scheduler', 'cores', 'resources', 'slots'),
    [
        ('core.direct', 2, {'num_machines': 1}, 1),  # a job takes the computer's default: every core
        ('core.direct', 2, {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 2),
        ('core.direct', 16, {'num_machines': 1, 'num_mpiprocs_per_machine': 4}, 4),
        ('core.direct', 2, {'num_machines': 1, 'num_mpiprocs_per_machine': 4}, 1),  # too big still runs, alone
        ('core.slurm', 2, {'num_machines': 1}, None),  # the queue places jobs
        ('core.direct', None, {'num_machines': 1}, None),  # no default: nothing to go by
    ],
)
def test_direct_jobs_side_by_side_never_oversubscribe_the_cores(scheduler, cores, resources, slots):
    assert direct_job_slots(scheduler, cores, resources) == slots
