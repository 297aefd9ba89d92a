"""Parser of ``mofal.mace.train``: the model, its metrics and the training curve, or the exit code of the failure."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

from aiida import orm

from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.mlp.train_log import diagnose, parse_training_curve, training_metrics
from aiida_mofal.mlp.training import default_hyperparameters, model_file_name, run_tag

from ..script import ScriptParser

__all__ = ['MaceTrainParser']


class MaceTrainParser(ScriptParser):
    """Turn a finished training job into the model, its metrics and the training curve (or an exit code)."""

    def parse(self, **kwargs):
        """Check status, NaN, wall time, failure, divergence, in that order; then store the model and metrics."""
        calc = self.node.process_class
        seed = self.node.inputs.seed.value
        status_text = self.read(calc.STATUS_FILE)
        status = None if status_text is None else json.loads(status_text)
        log_text = self.read(f'{run_tag(seed)}.log') or ''  # AiiDA retrieves `logs/x` as `x`
        curve = parse_training_curve(self.read(f'{run_tag(seed)}_train.txt') or '')
        if status is not None and curve:
            array = orm.ArrayData()
            for key, value in curve.items():
                array.set_array(key, value)
            self.out('training_curve', array)

        outcome = diagnose(status, curve, log_text, self.read(calc.STDERR))
        exit_code = {
            'no_status': self.exit_codes.ERROR_NO_STATUS,
            'nan': self.exit_codes.ERROR_NAN_LOSS,
            'walltime': self.exit_codes.ERROR_OUT_OF_WALLTIME,
            'failed': self.exit_codes.ERROR_MACE_FAILED,
            'diverged': self.exit_codes.ERROR_DIVERGENCE,
        }.get(outcome.kind)
        if exit_code is not None:
            return exit_code.format(**outcome.details) if outcome.details else exit_code

        hyperparameters = {**default_hyperparameters(), **self.node.inputs.hyperparameters.get_dict()}
        stage_two = bool(hyperparameters['swa'])
        model_name = model_file_name(stage_two)
        content = self.read(model_name, mode='rb')
        if content is None:
            return self.exit_codes.ERROR_MISSING_OUTPUT.format(what=f'the model file {model_name}')
        train = self.node.inputs.train
        provenance = {
            **hyperparameters,
            'seed': seed,
            'dtype': self.node.inputs.dtype.value,
            'E0s': {symbol: train.isolated_atom_energies[symbol] for symbol in train.elements},
            'stage': 'stage_two' if stage_two else 'stage_one',
            'parent_model': self.node.inputs.parent_model.uuid if 'parent_model' in self.node.inputs else None,
        }
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / MaceModelData.FILENAME
            path.write_bytes(content)
            try:  # trusted: the file is the one this job's own mace_run_train wrote; converted to weights here
                model = MaceModelData(path, hyperparameters=provenance, trusted=True)
            except ValueError as error:
                return self.exit_codes.ERROR_MISSING_OUTPUT.format(what=f'a loadable model file ({error})')
            self.out('model', model)
        compiled = self.read(model_file_name(stage_two, compiled=True), mode='rb')
        if compiled is not None:
            self.out('compiled_model', orm.SinglefileData(io.BytesIO(compiled), filename='compiled.model'))
        self.out('metrics', orm.Dict(training_metrics(log_text, curve, status)))
        return None
