"""``mofal.mace_model``: a trained MACE model file with what is needed to use and compare it."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from aiida import orm

from .attributes import stored_attribute

__all__ = ['MaceModelData', 'describe_mace_model']


def describe_mace_model(path: str | Path) -> dict:
    """Read the facts a user queries from a MACE model file: elements, cut-off, layers, channels, dtype."""
    import torch
    from ase.data import chemical_symbols

    try:
        model = torch.load(str(path), map_location='cpu', weights_only=False)
    except Exception as exception:
        raise ValueError(f'{path} is not a loadable MACE model file: {exception}') from exception
    for attribute in ('atomic_numbers', 'r_max', 'num_interactions', 'node_embedding'):
        if not hasattr(model, attribute):
            raise ValueError(f'{path} holds a {type(model).__name__}, not a MACE model (no `{attribute}`).')
    scalar_channels = sum(mul for mul, irrep in model.node_embedding.linear.irreps_out if irrep.l == 0)
    parameter = next(model.parameters())
    return {
        'elements': [chemical_symbols[int(z)] for z in model.atomic_numbers],
        'r_max': float(model.r_max),
        'num_interactions': int(model.num_interactions),
        'num_channels': int(scalar_channels),
        'dtype': str(parameter.dtype).replace('torch.', ''),
        'model_class': type(model).__name__,
    }


class MaceModelData(orm.Data):
    """A MACE model (the file ``mace_run_train`` writes) plus its hyperparameters.

    Attributes: ``elements``, ``r_max`` (Å), ``num_interactions``, ``num_channels`` (the size of one
    layer's invariant features, which the uncertainty model works on), ``dtype``, ``hyperparameters``,
    ``sha256``. The file is in the node's repository, so the model travels with an exported archive.
    """

    FILENAME = 'model.model'

    def __init__(self, file: str | Path, *, hyperparameters: Mapping | None = None, **kwargs):
        super().__init__(**kwargs)
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f'MACE model file {path} does not exist.')
        facts = describe_mace_model(path)
        content = path.read_bytes()
        self.base.repository.put_object_from_bytes(content, self.FILENAME)
        self.base.attributes.set_many(
            {
                **facts,
                'hyperparameters': dict(hyperparameters or {}),
                'sha256': hashlib.sha256(content).hexdigest(),
            }
        )

    elements = stored_attribute('elements', 'Element symbols the model knows.')

    r_max = stored_attribute('r_max', 'Cut-off radius, Å.')

    num_channels = stored_attribute('num_channels', 'Invariant features per atom and interaction layer.')

    def require_elements(self, elements: Iterable[str], what: str = 'the structures') -> None:
        """Refuse ``what`` (e.g. ``'data set 12'``) when it holds ``elements`` this model was not trained on.

        :raises ValueError: naming the missing elements, the model and the fix.
        """
        missing = sorted(set(elements) - set(self.elements))
        if missing:
            raise ValueError(
                f'{what} contains {", ".join(missing)}, which MACE model {self.pk or "(unstored)"} '
                f'(elements {", ".join(self.elements)}) cannot describe; use a model trained on these elements '
                '(add configurations that contain them to the training set and train again).'
            )

    def write(self, path: str | Path) -> Path:
        """Copy the model file to ``path``."""
        path = Path(path)
        path.write_bytes(self.base.repository.get_object_content(self.FILENAME, mode='rb'))
        return path

    def get_calculator(self, device: str = 'cpu', default_dtype: str | None = None, **kwargs):
        """Return a ``MACECalculator`` for this model (the file is copied to a private temporary dir)."""
        from mace.calculators import MACECalculator

        directory = tempfile.mkdtemp(prefix='mofal-model-')
        path = self.write(Path(directory) / self.FILENAME)
        dtype = default_dtype or self.base.attributes.get('dtype')
        return MACECalculator(model_paths=str(path), device=device, default_dtype=dtype, **kwargs)
