"""The submit scripts a SLURM computer really gets for CPU and GPU requests of a campaign (dry runs, no GPU).

The computer here is only stored, never reached: a dry run writes the job folder and its ``_aiidasubmit.sh``
locally, exactly as the upload would, with the scheduler plugin of the computer (``core.slurm``).
"""

import shlex
from pathlib import Path

import pytest
from aiida import engine, orm
from ase.build import molecule

from aiida_mofal.calculations.mace_evaluate import MaceEvaluateCalculation
from aiida_mofal.data import DatasetData, MaceModelData
from aiida_mofal.remote.config import parse_computer_file
from aiida_mofal.workchains.campaign import ClusterCampaignWorkChain

#: the computer file of the fake cluster, as a user writes it for ``mofal computer setup``
GPU_CLUSTER_FILE = """
label: fake-gpu-cluster
hostname: login.example.org
scheduler: core.slurm
work_dir: /scratch/{username}/aiida
mpirun: srun
mpiprocs_per_machine: 4
partitions:
  cpu: {gpus_per_node: 0, default: true}
  gpu: {gpus_per_node: 4}
codes:
  cp2k: {executable: /opt/cp2k/cp2k.psmp}
  python-mace: {executable: /opt/env/bin/python}
"""


class _UnreachedRemote:
    """What ``setup_computer`` asks the remote, answered here: the user, the work directory, each code's path."""

    def whoami(self) -> str:
        return 'someone'

    def makedirs(self, path, ignore_existing=False) -> None:
        pass

    def exec_command_wait(self, command):
        """``command -v EXECUTABLE`` after the prepend texts: the absolute paths of the file are found as given."""
        script = shlex.split(command)[-1]
        return 0, shlex.split(script.splitlines()[-1])[-1] + '\n', ''

    def close(self) -> None:
        pass


@pytest.fixture(scope='module')
def gpu_cluster(aiida_profile):
    """A SLURM computer with a cpu and a gpu partition, stored by ``mofal computer setup``'s function, its codes."""
    from aiida_mofal.remote import setup

    config = parse_computer_file(GPU_CLUSTER_FILE, 'fake-gpu-cluster.yaml').config
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(setup, '_open_transport', lambda computer: _UnreachedRemote())
        summary = setup.setup_computer(config)
    return {name: orm.load_code(label) for name, label in summary['codes'].items()}


def _water_box():
    atoms = molecule('H2O')
    atoms.set_cell([6.0, 6.0, 6.0])
    atoms.center()
    atoms.pbc = True
    return atoms


def _submit_script(code, options, model_file) -> str:
    """The ``_aiidasubmit.sh`` of a MACE evaluation job with ``options`` on ``code`` (a dry run)."""
    frame = _water_box()
    frame.info['REF_energy'] = -470.0
    frame.arrays['REF_forces'] = frame.positions * 0.0
    builder = MaceEvaluateCalculation.get_builder()
    builder.code = code
    builder.model = MaceModelData(model_file, trusted=True).store()
    builder.structures = DatasetData([frame]).store()
    resources = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
    builder.metadata.options = {**options, 'resources': resources, 'max_wallclock_seconds': 1800}
    builder.metadata.dry_run = True
    builder.metadata.store_provenance = False
    _, node = engine.run_get_node(builder)
    folder = Path(node.dry_run_info['folder'])
    return (folder / node.dry_run_info['script_filename']).read_text()


def test_campaign_gpu_request_reaches_the_submit_script(gpu_cluster, tiny_mace_model_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a dry run writes submit_test/ into the working directory
    codes = {'cp2k': gpu_cluster['cp2k'], 'train': gpu_cluster['python-mace'], 'md': gpu_cluster['python-mace']}
    overrides = {
        'resources': {
            'cp2k': {'code': 'cp2k@fake-gpu-cluster', 'partition': 'cpu', 'account': 'mofs'},
            'train': {'code': 'python-mace@fake-gpu-cluster', 'gpus': 1, 'qos': 'short'},
            'md': {'code': 'python-mace@fake-gpu-cluster', 'gpus': 1},
        }
    }
    builder = ClusterCampaignWorkChain.get_builder_from_protocol(codes, {'water': _water_box()}, overrides=overrides)
    resources = builder.settings.get_dict()['resources']
    assert resources['train']['options'] == {
        'queue_name': 'gpu',
        'qos': 'short',
        'custom_scheduler_commands': '#SBATCH --gres=gpu:1',
    }
    assert resources['cp2k']['options'] == {'queue_name': 'cpu', 'account': 'mofs'}

    gpu_script = _submit_script(gpu_cluster['python-mace'], resources['train']['options'], tiny_mace_model_file)
    cpu_script = _submit_script(gpu_cluster['python-mace'], resources['cp2k']['options'], tiny_mace_model_file)
    print('--- GPU request ---\n' + gpu_script + '--- CPU request ---\n' + cpu_script)
    assert '#SBATCH --partition=gpu' in gpu_script and '#SBATCH --qos=short' in gpu_script
    assert '#SBATCH --gres=gpu:1' in gpu_script
    assert '#SBATCH --partition=cpu' in cpu_script and '#SBATCH --account=mofs' in cpu_script
    assert '--gres' not in cpu_script
    assert '/opt/env/bin/python' in gpu_script


def test_campaign_refuses_more_gpus_than_the_partition_has(gpu_cluster):
    codes = {'cp2k': gpu_cluster['cp2k'], 'train': gpu_cluster['python-mace'], 'md': gpu_cluster['python-mace']}
    overrides = {'resources': {'train': {'code': 'python-mace@fake-gpu-cluster', 'gpus': 8}}}
    with pytest.raises(ValueError, match=r"resources.train: gpus: 8 asked, but nodes of partition 'gpu' have 4"):
        ClusterCampaignWorkChain.get_builder_from_protocol(codes, {'water': _water_box()}, overrides=overrides)


def test_a_gpu_training_request_gives_the_gres_line_and_a_cuda_training(gpu_cluster, xtb_split, tmp_path, monkeypatch):
    """The real training job of a campaign's ``train: {gpus: 1, qos: short}`` on a SLURM computer (dry run)."""
    import json

    from aiida_mofal.calculations.mace_train import MaceTrainCalculation
    from aiida_mofal.remote import computer_partitions, device_for, scheduler_options
    from aiida_mofal.workchains.train import TrainWorkChain

    monkeypatch.chdir(tmp_path)
    code = gpu_cluster['python-mace']
    options = scheduler_options({'gpus': 1, 'qos': 'short'}, 'core.slurm', {}, computer_partitions(code.computer))
    train, validation = xtb_split
    chain = TrainWorkChain.get_builder_from_protocol(
        code, train, validation, protocol='tiny', overrides={'device': device_for(1)}, options=options
    )
    builder = MaceTrainCalculation.get_builder()
    builder._update(chain.mace)
    builder.metadata.dry_run = True
    builder.metadata.store_provenance = False
    _, node = engine.run_get_node(builder)
    folder = Path(node.dry_run_info['folder'])
    script = (folder / node.dry_run_info['script_filename']).read_text()
    print('--- GPU training request ---\n' + script)
    assert '#SBATCH --partition=gpu' in script and '#SBATCH --qos=short' in script
    assert '#SBATCH --gres=gpu:1' in script and '#SBATCH --time=00:30:00' in script
    argv = json.loads((folder / 'mace_args.json').read_text())['argv']
    assert '--device=cuda' in argv  # MACE trains on the GPU the job asked for
