"""What the remote driver scripts (``md_run.py``, ``relax_run.py``) share: their configuration and their result file.

Standard library only: shipped beside the drivers as ``mofal_md/driver.py``, where no aiida-mofal is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
import traceback
from pathlib import Path

__all__ = ['read_config', 'recorded']


def read_config(argv: list[str] | None, default: str, description: str) -> dict:
    """Return the job's JSON configuration: the file named on the command line, else ``default``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('input', nargs='?', default=default)
    return json.loads(Path(parser.parse_args(argv).input).read_text())


@contextlib.contextmanager
def recorded(result: dict, path: str | Path, started: float, **dump_options):
    """Write ``result`` to ``path`` however the block ends, with its ``wall_seconds`` since ``started``.

    An unexpected exception in the block is not raised: it becomes ``status`` ``error`` with its traceback as the
    ``message`` (and on standard error), so the parser always finds a result that says what happened.
    """
    try:
        yield result
    except Exception:
        result['status'] = 'error'
        result['message'] = traceback.format_exc()
        traceback.print_exc()
    finally:
        result['wall_seconds'] = time.monotonic() - started
        Path(path).write_text(json.dumps(result, **dump_options))
