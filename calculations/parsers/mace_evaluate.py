"""Parser of ``mofal.mace.evaluate``: ``results.json`` and the ``.npz`` arrays into ``metrics``/``errors`` or a scan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from aiida import orm

from ..mace_evaluate import array_data
from ..script import ScriptParser

__all__ = ['MaceEvaluateParser']


class MaceEvaluateParser(ScriptParser):
    """Turn ``results.json`` and the ``.npz`` arrays into ``metrics``/``errors`` or ``summary``/``scan``."""

    def parse(self, **kwargs):
        """Parse the outputs of one run of ``mace_evaluate.py``."""
        calc = self.node.process_class
        results_text = self.read(calc.RESULTS)
        if results_text is None:
            return self.exit_codes.ERROR_SCRIPT_FAILED.format(reason=self.stderr_tail())
        results = json.loads(results_text)
        mode = results.pop('mode')
        results.pop('wall_time_s', None)
        results.pop('timings', None)  # the job's fixed cost (benchmarks/job_startup.py), not a property of the model
        temporary = Path(kwargs.get('retrieved_temporary_folder') or '.')
        filename = 'errors.npz' if mode == 'evaluate' else 'scan.npz'
        if not (temporary / filename).is_file():
            return self.exit_codes.ERROR_MISSING_OUTPUT.format(filename=filename)
        with np.load(temporary / filename, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        if mode == 'scan':
            self.out('scan', array_data(arrays))
            self.out('summary', orm.Dict(results))
            return None
        bad = ~np.isfinite(arrays['energy_pred'])
        per_atom_bad = ~np.all(np.isfinite(arrays['forces_pred']), axis=1)
        bad[np.unique(arrays['structure_index'][per_atom_bad])] = True
        self.out('errors', array_data(arrays))
        if bad.any():
            return self.exit_codes.ERROR_NON_FINITE_PREDICTIONS.format(
                count=int(bad.sum()), first=int(np.flatnonzero(bad)[0])
            )
        self.out('metrics', orm.Dict(results))
        return None
