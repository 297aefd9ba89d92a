"""Quiet progress for processes run in the foreground: a bar per step and one line per cycle, not every report.

AiiDA prints each process's report lines on the terminal (``[pk|Class|step]: message``); a campaign makes hundreds.
:func:`quiet_progress` keeps them in the database (the ``database`` handler is untouched: ``verdi process report``
still shows everything) but takes them off the terminal, turning them into a tqdm bar for the step under way (the
CP2K single points of a labelling step count as its units) and one summary line per cycle. Warnings from
dependencies that a user cannot act on (torch's ``weights_only`` notice, repeated by every MACE model load;
e3nn and torch deprecations) are not shown. ``--verbose`` gives the report lines back.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import warnings
from collections.abc import Iterator

__all__ = ('ProgressHandler', 'quiet_dependency_warnings', 'quiet_progress')

REPORT = re.compile(r'^\[(?P<pk>\d+)\|(?P<process>[^|]+)\|(?P<method>[^\]]+)\]: (?P<message>.*)$', re.S)
SUBMITTED = re.compile(r'submitted (?P<now>\d+) CP2K single point\(s\); (?P<waiting>\d+) waiting')
STEPS = {
    'LabelWorkChain': 'label (CP2K)',
    'Cp2kBaseWorkChain': 'label (CP2K)',
    'TrainWorkChain': 'train (MACE)',
    'MdBaseWorkChain': 'explore (MD)',
    'ReaxffMdWorkChain': 'MD (ReaxFF)',
    'MeltQuenchWorkChain': 'melt-quench',
    'EosWorkChain': 'equation of state',
}
#: processes whose "cycle N: ..." reports are the one line a cycle gets
SUMMARY_PROCESSES = ('ClusterCampaignWorkChain', 'TemperatureCampaignWorkChain')


def quiet_dependency_warnings() -> None:
    """Hide warnings a user of ``mofal`` cannot act on (they stay visible with ``python -W default``)."""
    warnings.filterwarnings('ignore', message=r'.*weights_only.*')
    for module in ('torch', 'e3nn', 'mace', 'aiida_cp2k', 'cp2k_output_tools', 'aiida_workgraph', 'node_graph'):
        warnings.filterwarnings('ignore', category=DeprecationWarning, module=module)
        warnings.filterwarnings('ignore', category=FutureWarning, module=module)
        warnings.filterwarnings('ignore', category=UserWarning, module=module)


class ProgressHandler(logging.Filter):
    """A filter on the terminal handlers: drops report lines, feeding them to a step bar and cycle summaries."""

    def __init__(self, cycles: int | None = None, stream=None):
        super().__init__()
        from tqdm import tqdm

        self._tqdm = tqdm
        self.stream = stream or sys.stderr
        self.cycles = tqdm(total=cycles, desc='cycles', unit='cycle', position=0, file=self.stream, leave=True)
        self.step = None
        self.step_name = None
        self.lines: list[str] = []

    def _start(self, name: str, total: int | None) -> None:
        if self.step is not None:
            self.step.close()
        self.step_name = name
        self.step = self._tqdm(total=total, desc=name, unit='job', position=1, file=self.stream, leave=False)

    def _summary(self, message: str) -> None:
        self.lines.append(message)
        self._tqdm.write(message, file=self.stream)

    def handle_report(self, process: str, message: str) -> None:
        """Update the bars from one report line of ``process``."""
        if process in SUMMARY_PROCESSES:
            if re.match(r'cycle \d+: \d+ configurations', message):
                self.cycles.update(1)
                self._summary(message)
            elif message.startswith(('stopping', 'campaign done')):
                self._summary(message)
            return
        if process == 'CampaignTestSetWorkChain' and message.startswith('test set:'):
            self._summary(message)  # the campaign's MD-sampled test set, labelled once
            return
        name = STEPS.get(process)
        if name is None:
            return
        submitted = SUBMITTED.search(message)
        if submitted:
            now, waiting = int(submitted['now']), int(submitted['waiting'])
            if self.step_name != name or self.step.total is None:
                self._start(name, now + waiting)
        elif self.step_name != name:
            self._start(name, None)
        if process == 'Cp2kBaseWorkChain' and 'work chain completed' in message:
            self.step.update(1)
        else:
            self.step.set_postfix_str(message[:60], refresh=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep warnings and errors on the terminal; turn report and info lines into progress."""
        if record.levelno >= logging.WARNING:
            return True
        if getattr(record, '_mofal_progress_seen', False):  # the same record on a second terminal handler
            return False
        record._mofal_progress_seen = True
        match = REPORT.match(record.getMessage())
        if match:
            self.handle_report(match['process'], match['message'])
        return False

    def close(self) -> None:
        """Close the bars (the cycle bar stays on the terminal)."""
        if self.step is not None:
            self.step.close()
        self.cycles.close()


def _terminal_handlers() -> list[logging.Handler]:
    """Return the handlers of AiiDA's loggers that print to the terminal (not the database, not log files)."""
    from aiida.cmdline.utils.log import CliHandler

    handlers = []
    for name in ('aiida', 'aiida.orm', 'aiida.engine'):
        for handler in logging.getLogger(name).handlers:
            terminal = isinstance(handler, CliHandler) or type(handler) is logging.StreamHandler  # not files
            if terminal and handler not in handlers:
                handlers.append(handler)
    return handlers


@contextlib.contextmanager
def quiet_progress(verbose: bool = False, cycles: int | None = None) -> Iterator[ProgressHandler | None]:
    """Within the block, show progress bars instead of report lines (unless ``verbose``); hide dependency warnings.

    :param cycles: the number of cycle summaries to expect (the bar's total), if known.
    """
    with warnings.catch_warnings():
        quiet_dependency_warnings()
        if verbose:
            yield None
            return
        from aiida.manage import get_manager

        get_manager().get_profile_storage()  # loading the storage reconfigures logging: attach to the final handlers
        progress = ProgressHandler(cycles)
        handlers = _terminal_handlers()
        for handler in handlers:
            handler.addFilter(progress)
        try:
            yield progress
        finally:
            for handler in handlers:
                handler.removeFilter(progress)
            progress.close()
