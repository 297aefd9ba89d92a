"""``mofal.mace_model``: a trained MACE model file with what is needed to use and compare it."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from aiida import orm

from .attributes import stored_attribute

__all__ = ['MaceModelData', 'describe_mace_model']

_ENGINE_FILES: dict[str, bytes] = {}  # sha256 of a weights file -> MACE's file made from it in this process
_CACHED_MODELS = 4


def describe_mace_model(model) -> dict:
    """Read the facts a user queries from a MACE model (module): elements, cut-off, layers, channels, dtype."""
    from ase.data import chemical_symbols

    for attribute in ('atomic_numbers', 'r_max', 'num_interactions', 'node_embedding'):
        if not hasattr(model, attribute):
            raise ValueError(f'a {type(model).__name__} is not a MACE model (no `{attribute}`).')
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
    """A MACE model, stored as weights plus the hyperparameters that rebuild it, with its facts as attributes.

    Attributes: ``elements``, ``r_max`` (Å), ``num_interactions``, ``num_channels`` (the size of one
    layer's invariant features, which the uncertainty model works on), ``dtype``, ``hyperparameters``,
    ``sha256`` (of the stored file), ``source_sha256`` (of the file it was made from). The file is in the node's
    repository, so the model travels with an exported archive.

    The stored file is the weights-only form of :mod:`aiida_mofal.mlp.safe_model`: reading it (here, after an
    archive import, anywhere) never runs code. A MACE ``.model`` pickle is accepted only with ``trusted=True``
    and converted on the way in. The engines that want MACE's own file get one made from the checked weights
    (:meth:`write`).
    """

    FILENAME = 'model.pt'

    def __init__(self, file: str | Path, *, hyperparameters: Mapping | None = None, trusted: bool = False, **kwargs):
        from aiida_mofal.mlp.safe_model import load_model, save_weights

        super().__init__(**kwargs)
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f'MACE model file {path} does not exist.')
        model = load_model(path, trusted=trusted)
        facts = describe_mace_model(model)
        content = save_weights(model)
        self.base.repository.put_object_from_bytes(content, self.FILENAME)
        self.base.attributes.set_many(
            {
                **facts,
                'hyperparameters': dict(hyperparameters or {}),
                'sha256': hashlib.sha256(content).hexdigest(),
                'source_sha256': hashlib.sha256(path.read_bytes()).hexdigest(),
            }
        )

    def _engine_file(self) -> bytes:
        """Return MACE's own file (pickle bytes) of this model, made in this process from the weights-only file.

        Rebuilding a MACE model computes its Clebsch-Gordan tables and compiles e3nn's kernels (seconds), so the
        bytes are kept per process, keyed by the hash of the weights file actually read (never the attribute).

        :raises UnsafeModelError: when the node holds no weights-only file (made by hand or by an old version,
            e.g. imported from an archive): nothing in it is unpickled.
        """
        import io

        import torch

        from aiida_mofal.mlp.safe_model import UnsafeModelError, load_payload, rebuild

        names = self.base.repository.list_object_names()
        content = self.base.repository.get_object_content(self.FILENAME, mode='rb') if self.FILENAME in names else b''
        key = hashlib.sha256(content).hexdigest()
        if key not in _ENGINE_FILES:
            payload = load_payload(content) if content else None
            if payload is None:
                raise UnsafeModelError(
                    f'MACE model node {self.pk} holds no weights-only model file ({", ".join(names) or "no files"}); '
                    'aiida-mofal does not unpickle model files from the database or an imported archive. If you '
                    'trust where it came from, get the .model file and store it again with --trust-model-file '
                    '(Python: MaceModelData(path, trusted=True)).'
                )
            buffer = io.BytesIO()
            torch.save(rebuild(payload), buffer)
            while len(_ENGINE_FILES) >= _CACHED_MODELS:
                _ENGINE_FILES.pop(next(iter(_ENGINE_FILES)))
            _ENGINE_FILES[key] = buffer.getvalue()
        return _ENGINE_FILES[key]

    def get_module(self):
        """Return a fresh MACE ``torch.nn.Module`` (eval mode) of this model, rebuilt from the weights-only file."""
        import io

        import mace  # noqa: F401  (before torch.load: mace lets e3nn load its constants)
        import torch

        # the bytes were made by this process from checked weights (``_engine_file``): no database pickle is read
        return torch.load(io.BytesIO(self._engine_file()), map_location='cpu', weights_only=False).eval()

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
        """Write MACE's own ``.model`` file (a pickle the engines load) to ``path``, made here from the weights.

        The pickle is produced by this process from the rebuilt module, so the job that loads it loads what this
        node's checked weights say, never bytes from the database.
        """
        path = Path(path)
        path.write_bytes(self._engine_file())
        return path

    def get_calculator(self, device: str = 'cpu', default_dtype: str | None = None, **kwargs):
        """Return a ``MACECalculator`` for this model (its file is written to a private temporary dir)."""
        from mace.calculators import MACECalculator

        directory = tempfile.mkdtemp(prefix='mofal-model-')
        path = self.write(Path(directory) / 'model.model')
        dtype = default_dtype or self.base.attributes.get('dtype')
        return MACECalculator(model_paths=str(path), device=device, default_dtype=dtype, **kwargs)
