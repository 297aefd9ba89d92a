"""The computer file: the shipped examples validate; typos, repeated keys and unset variables name their line."""

import re
from pathlib import Path

import pytest

from aiida_mofal.remote.config import ComputerFileError, load_computer_file, parse_computer_file

EXAMPLES = Path(__file__).resolve().parents[2] / 'examples' / 'computers'


def test_slurm_localhost_example_validates(monkeypatch):
    monkeypatch.setenv('VIRTUAL_ENV', '/opt/venv')
    config = load_computer_file(EXAMPLES / 'slurm-localhost.yaml').config
    assert config.label == 'slurm-localhost' and config.hostname == 'mofal-slurm'
    assert (config.transport, config.scheduler) == ('core.ssh_async', 'core.slurm')
    assert config.mpirun == ['mpirun', '--allow-run-as-root', '-np', '{tot_num_mpiprocs}']
    assert config.codes['python-mace'].executable == '/opt/venv/bin/python'
    assert set(config.codes) == {'cp2k', 'lammps', 'python-mace'}
    assert config.partition_for(None)[0] == 'cpu'


def test_gpu_cluster_template_validates_once_filled_in():
    text = (EXAMPLES / 'gpu-cluster.template.yaml').read_text()
    placeholders = set(re.findall(r'<([^>]+)>', text))
    assert 'my-cluster' in placeholders
    filled = re.sub(r'<([^>]+)>', lambda m: re.sub(r'[^A-Za-z0-9.-]', '-', m.group(1)), text)
    config = parse_computer_file(filled, 'template').config
    assert config.partitions['gpu'].gpus_per_node == 4 and config.mpirun == ['srun']
    assert 'module load CUDA' in config.codes['python-mace'].prepend_text


def _minimal(**changes) -> str:
    lines = {
        'label': 'c1',
        'hostname': 'h',
        'scheduler': 'core.slurm',
        'work_dir': '/scratch/{username}',
        'mpirun': 'srun',
        'mpiprocs_per_machine': '4',
        'codes': '\n  cp2k: {executable: cp2k.psmp}',
    }
    lines.update(changes)
    return '\n'.join(f'{key}: {value}' for key, value in lines.items()) + '\n'


def test_every_problem_is_named_with_its_line_and_a_suggestion(monkeypatch):
    monkeypatch.delenv('NOT_SET_ANYWHERE', raising=False)
    text = _minimal(
        scheduler='core.slrum',
        work_dir='scratch',
        mpiprocs_per_machin='4',
        codes='\n  cp2k: {executable: "{local:NOT_SET_ANYWHERE}/cp2k"}\n  quantum-espresso: {executable: pw.x}',
    )
    with pytest.raises(ComputerFileError) as info:
        parse_computer_file(text, 'c1.yaml')
    message = str(info.value)
    assert "c1.yaml:3: scheduler: Input should be 'core.slurm' or 'core.direct' (did you mean 'core.slurm'?)" in message
    assert 'c1.yaml:4: work_dir: Value error, give an absolute path' in message
    assert "c1.yaml:10: mpiprocs_per_machin: unknown key (did you mean 'mpiprocs_per_machine'?)" in message
    assert "c1.yaml:7: codes: Value error, unknown code(s) ['quantum-espresso']" in message
    assert 'c1.yaml:8: {local:NOT_SET_ANYWHERE}: environment variable NOT_SET_ANYWHERE is not set' in message


def test_repeated_keys_are_refused():
    text = _minimal() + 'hostname: other\n'
    with pytest.raises(ComputerFileError, match=r'c.yaml:9: hostname: repeated key'):
        parse_computer_file(text, 'c.yaml')


def test_local_transport_must_be_localhost():
    with pytest.raises(ComputerFileError, match='core.local runs on this machine'):
        parse_computer_file(_minimal(transport='core.local', scheduler='core.direct'), 'c.yaml')
