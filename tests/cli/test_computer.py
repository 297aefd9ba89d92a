"""`mofal computer setup`: a bad computer file is refused before anything is made, naming its lines."""

from click.testing import CliRunner

from aiida_mofal.cli import cmd_root


def test_typos_are_refused_with_their_lines_and_nothing_is_created(aiida_profile, tmp_path):
    from aiida import orm

    path = tmp_path / 'cluster.yaml'
    path.write_text(
        'label: typo-cluster\nhostname: h\nscheduler: core.slurm\nwork_dir: /scratch\nmpirun: srun\n'
        'mpiprocs_per_machine: 4\ncodes:\n  cp2k: {executable: cp2k.psmp, prepend: module load cp2k}\n'
    )
    result = CliRunner().invoke(cmd_root, ['computer', 'setup', str(path)])
    assert result.exit_code != 0
    assert f"{path}:8: codes.cp2k.prepend: unknown key (did you mean 'prepend_text'?)" in result.output
    assert 'typo-cluster' not in [computer.label for computer in orm.Computer.collection.all()]
