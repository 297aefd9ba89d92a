"""The throw-away AiiDA profile the engine benchmarks run in (their own ``AIIDA_PATH``), set up once here.

Imported by the benchmark scripts that run as ``python benchmarks/<name>.py`` (this folder is then on ``sys.path``).
"""

from __future__ import annotations

import os
import tempfile


def throwaway_profile(name: str, threads: int):
    """Make a fresh profile ``name`` with ``mofal setup`` in a temporary ``AIIDA_PATH``; torch on ``threads``.

    MACE is imported before torch loads anything (its import order), and ``OMP_NUM_THREADS`` is set first so that
    the jobs started from here use the same threads as this process.

    :returns: (the setup summary, the ``python-mace`` code).
    """
    os.environ['AIIDA_PATH'] = tempfile.mkdtemp(prefix='mofal-bench-')
    os.environ['OMP_NUM_THREADS'] = str(threads)
    import mace  # noqa: F401  (before torch.load)
    import torch

    torch.set_num_threads(threads)
    from aiida import orm

    from aiida_mofal.environment.profile import setup

    summary = setup(name=name)
    return summary, orm.load_code(summary['codes']['python-mace'])
