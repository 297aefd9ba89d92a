"""Quiet progress: report lines leave the terminal (not the database or log file), become a bar and cycle lines."""

import io
import logging
import warnings

from aiida import engine, orm

from aiida_mofal.cli.progress import ProgressHandler, quiet_progress

LINES = [
    '[12|LabelWorkChain|submit_batch]: submitted 2 CP2K single point(s); 3 waiting',
    '[20|Cp2kBaseWorkChain|results]: work chain completed after 1 iterations',
    '[21|Cp2kBaseWorkChain|results]: work chain completed after 1 iterations',
    '[101|TrainWorkChain|setup]: split the training set into 3 training and 1 validation configurations',
    '[1|ClusterCampaignWorkChain|_record_cycle]: cycle 0: 4 configurations, MAE_p95 0.9 eV/Å, unknown None',
    '[1|ClusterCampaignWorkChain|inspect_scan]: cycle 1: 20 of 400 atoms unknown (0.0500) in 4 frames; 2 clusters',
    '[1|ClusterCampaignWorkChain|_record_cycle]: cycle 1: 6 configurations, MAE_p95 0.7 eV/Å, unknown 0.05',
    '[1|ClusterCampaignWorkChain|finalise]: campaign done after cycle 1: 1 cycles done',
]


def _record(message, level=23):
    return logging.LogRecord('aiida.orm.nodes.process', level, __file__, 1, message, None, None)


def test_reports_become_a_bar_per_step_and_one_line_per_cycle():
    stream = io.StringIO()
    progress = ProgressHandler(cycles=2, stream=stream)
    kept = [progress.filter(_record(line)) for line in LINES]
    assert not any(kept)
    assert progress.filter(_record('[5|TrainWorkChain|x]: failed', level=logging.WARNING))
    assert progress.lines == [LINES[4].split(']: ')[1], LINES[6].split(']: ')[1], LINES[7].split(']: ')[1]]
    assert progress.cycles.n == 2
    assert progress.step_name == 'train (MACE)'
    progress.close()
    assert 'cycle 1: 6 configurations' in stream.getvalue()


def test_labelling_counts_its_single_points():
    progress = ProgressHandler(stream=io.StringIO())
    for line in LINES[:3]:
        progress.filter(_record(line))
    assert progress.step_name == 'label (CP2K)' and progress.step.total == 5 and progress.step.n == 2
    progress.close()


def test_a_foreground_run_keeps_its_reports_in_the_database_but_off_the_terminal(aiida_profile, capsys):
    @engine.workfunction
    def noisy(x: orm.Int) -> orm.Int:
        warnings.warn('You are using `torch.load` with `weights_only=False`', FutureWarning, stacklevel=1)
        return orm.Int(x.value + 1).store()

    with quiet_progress(cycles=1) as progress:
        result, node = noisy.run_get_node(orm.Int(1))
        node.logger.report('[9|ClusterCampaignWorkChain|_record_cycle]: cycle 0: 4 configurations, MAE_p95 1 eV/Å')
    assert result.value == 2 and progress.lines == ['cycle 0: 4 configurations, MAE_p95 1 eV/Å']
    captured = capsys.readouterr()
    assert 'weights_only' not in captured.err and '[9|' not in captured.out + captured.err
    assert not any(progress in handler.filters for handler in logging.getLogger('aiida').handlers)  # removed again
