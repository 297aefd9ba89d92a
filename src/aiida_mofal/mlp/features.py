"""Per-atom invariant features of the last interaction layer of a MACE model (SCIENCE.md §1-2).

``MACECalculator.get_descriptors(atoms, num_layers=-1)`` returns the invariants of *all* layers and runs
the force backward pass on the way. The uncertainty model needs only the last layer, so this module does
one forward pass with ``compute_force=False`` under ``torch.no_grad()`` and keeps the scalar (``0e``)
channels of the last layer's block of ``node_feats``: the same numbers (checked in the tests), about 3-4×
faster and with far less memory.

Many small structures are joined into one graph batch of at most ``max_atoms_per_batch`` atoms. A single
structure larger than ``max_atoms_per_chunk`` (e.g. 22,000-atom glass on a small GPU) is cut into spatial
chunks; each chunk is evaluated with a halo of every atom (with its periodic images) within the model's
receptive field ``num_interactions × r_max`` of the chunk, as a non-periodic cluster, and only the chunk's
own atoms are kept. A MACE feature of layer L depends only on atoms reachable in L hops shorter than
``r_max``, all of which lie inside that halo, so chunked features equal whole-structure ones (to rounding).

This module needs torch, mace-torch, ase and numpy only: it is copied next to the remote scan script.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

__all__ = ['FeatureExtractor', 'load_mace_model']


def load_mace_model(path: str | Path, device: str = 'cpu', dtype: str | None = None):
    """Load a MACE model file for inference (eval mode, no parameter gradients) in ``dtype``.

    The file is unpickled, which runs any code it holds: give only a file this job's CalcJob wrote (it writes MACE's
    file from a node's checked weights, ``MaceModelData.write``) or one you trust. In the calling process
    aiida-mofal passes the module itself (``MaceModelData.get_module()``), never a path.
    """
    import mace  # noqa: F401  (sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD before torch.load; see tests/conftest.py)
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = torch.load(str(path), map_location=device, weights_only=False)
    for attribute in ('atomic_numbers', 'r_max', 'num_interactions', 'products'):
        if not hasattr(model, attribute):
            raise ValueError(f'{path} holds a {type(model).__name__}, not a MACE model (no `{attribute}`).')
    if dtype == 'float64':
        model = model.double()
    elif dtype == 'float32':
        model = model.float()
    elif dtype is not None:
        raise ValueError(f'dtype must be float32 or float64, got {dtype!r}.')
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _last_layer_invariant_columns(model) -> np.ndarray:
    """Column indices, within ``node_feats``, of the scalar channels of the last interaction layer."""
    dims = [int(product.linear.irreps_out.dim) for product in model.products]
    offset = sum(dims[:-1])
    columns = []
    irreps = model.products[-1].linear.irreps_out
    for (mul, irrep), block in zip(irreps, irreps.slices()):
        if irrep.l == 0 and irrep.p == 1:
            columns.extend(range(offset + block.start, offset + block.start + mul))
    if not columns:
        raise ValueError('the last interaction layer of this model has no invariant (0e) channels.')
    return np.array(columns)


class FeatureExtractor:
    """Compute last-layer invariant features of a MACE model for many structures.

    :param model: a MACE ``torch.nn.Module`` or the path of a model file.
    :param device: ``cpu`` or ``cuda``.
    :param dtype: ``float32``/``float64``; default: the model's own.
    :param max_atoms_per_batch: small structures are joined into graph batches of up to this many atoms.
    :param max_atoms_per_chunk: larger structures are cut into halo-padded chunks of about this many
        atoms (``None``: never cut; the whole structure is one graph).
    """

    def __init__(
        self,
        model,
        device: str = 'cpu',
        dtype: str | None = None,
        max_atoms_per_batch: int = 5000,
        max_atoms_per_chunk: int | None = None,
    ):
        import torch

        if isinstance(model, (str, Path)):
            model = load_mace_model(model, device=device, dtype=dtype)
        else:
            model = model.to(device)
            if dtype is not None:
                model = model.double() if dtype == 'float64' else model.float()
            model.eval()
        self.model = model
        self.device = device
        self.dtype = str(next(model.parameters()).dtype).replace('torch.', '')
        self.atomic_numbers = [int(z) for z in model.atomic_numbers]
        self.r_max = float(model.r_max)
        self.num_interactions = int(model.num_interactions)
        self.heads = list(getattr(model, 'heads', None) or ['Default'])
        self.columns = torch.as_tensor(_last_layer_invariant_columns(model), device=device)
        if max_atoms_per_batch < 1:
            raise ValueError('max_atoms_per_batch must be a positive number of atoms.')
        if max_atoms_per_chunk is not None and max_atoms_per_chunk < 1:
            raise ValueError('max_atoms_per_chunk must be a positive number of atoms or None.')
        self.max_atoms_per_batch = int(max_atoms_per_batch)
        self.max_atoms_per_chunk = max_atoms_per_chunk

    @property
    def num_features(self) -> int:
        """Length of one atom's feature vector (scalar channels of the last layer)."""
        return int(self.columns.numel())

    @property
    def receptive_field(self) -> float:
        """Distance (Å) beyond which atoms cannot change a last-layer feature: ``num_interactions × r_max``."""
        return self.num_interactions * self.r_max

    def check_elements(self, atoms: Atoms, name: str = 'structure') -> None:
        """Raise a ValueError naming the elements of ``atoms`` that the model was not built for."""
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(self._symbols))
        if unknown:
            raise ValueError(
                f'{name} contains {", ".join(unknown)}, which the MACE model (elements {", ".join(self._symbols)}) '
                'cannot describe; train a model with these elements.'
            )

    @property
    def _symbols(self) -> list[str]:
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in self.atomic_numbers]

    def _graph(self, atoms: Atoms):
        from mace import data as mace_data
        from mace.tools import utils

        config = mace_data.config_from_atoms(
            atoms, key_specification=mace_data.KeySpecification(), head_name=self.heads[-1]
        )
        return mace_data.AtomicData.from_config(
            config, z_table=utils.AtomicNumberTable(self.atomic_numbers), cutoff=self.r_max, heads=self.heads
        )

    def _forward(self, structures: Sequence[Atoms]) -> np.ndarray:
        """Features of the atoms of ``structures`` evaluated together as one graph batch."""
        import torch
        from mace.tools import torch_geometric, torch_tools

        with torch_tools.default_dtype(self.dtype):
            graphs = [self._graph(atoms) for atoms in structures]
            batch = torch_geometric.Batch.from_data_list(graphs).to(self.device)
            with torch.no_grad():
                output = self.model(batch.to_dict(), training=False, compute_force=False)
        return output['node_feats'][:, self.columns].detach().cpu().numpy().astype(float)

    def features(self, atoms: Atoms) -> np.ndarray:
        """Return the N × F features of one structure."""
        return self.features_many([atoms])[0]

    def features_many(self, frames: Sequence[Atoms]) -> list[np.ndarray]:
        """Return one N_i × F array per structure, in order."""
        for index, atoms in enumerate(frames):
            self.check_elements(atoms, f'structure {index}')
        results: list[np.ndarray | None] = [None] * len(frames)
        pending: list[int] = []
        pending_atoms = 0
        for index, atoms in enumerate(frames):
            if self.max_atoms_per_chunk is not None and len(atoms) > self.max_atoms_per_chunk:
                results[index] = self._chunked(atoms)
                continue
            if pending and pending_atoms + len(atoms) > self.max_atoms_per_batch:
                self._flush(frames, pending, results)
                pending, pending_atoms = [], 0
            pending.append(index)
            pending_atoms += len(atoms)
        if pending:
            self._flush(frames, pending, results)
        return results  # type: ignore[return-value]

    def _flush(self, frames, indices: list[int], results: list) -> None:
        features = self._forward([frames[i] for i in indices])
        start = 0
        for i in indices:
            results[i] = features[start : start + len(frames[i])]
            start += len(frames[i])

    def _chunks(self, atoms: Atoms) -> Iterator[np.ndarray]:
        """Yield the indices of spatially compact groups of about ``max_atoms_per_chunk`` atoms."""
        count = len(atoms)
        parts = int(np.ceil(count / self.max_atoms_per_chunk))
        per_axis = int(np.ceil(parts ** (1 / 3)))
        if atoms.cell.rank == 3:
            coordinates = atoms.get_scaled_positions(wrap=True)
        else:
            span = np.ptp(atoms.positions, axis=0) + 1e-9
            coordinates = (atoms.positions - atoms.positions.min(axis=0)) / span
        bins = np.minimum((coordinates * per_axis).astype(int), per_axis - 1)
        labels = (bins[:, 0] * per_axis + bins[:, 1]) * per_axis + bins[:, 2]
        for label in np.unique(labels):
            yield np.flatnonzero(labels == label)

    def _chunked(self, atoms: Atoms) -> np.ndarray:
        """Features of one large structure, chunk by chunk, each chunk with its receptive-field halo."""
        from ase.neighborlist import neighbor_list

        cutoff = self.receptive_field
        centres, neighbours, shifts = neighbor_list('ijS', atoms, cutoff, self_interaction=False)
        cell = np.asarray(atoms.cell)
        result = np.empty((len(atoms), self.num_features))
        for chunk in self._chunks(atoms):
            in_chunk = np.isin(centres, chunk)
            halo = np.unique(
                np.concatenate([neighbours[in_chunk, None], shifts[in_chunk]], axis=1), axis=0
            )  # (j, S) pairs
            own = np.concatenate([chunk[:, None], np.zeros((len(chunk), 3), dtype=int)], axis=1)
            is_own = (halo[:, 1:] == 0).all(axis=1) & np.isin(halo[:, 0], chunk)
            halo = halo[~is_own]
            members = np.concatenate([own, halo])
            positions = atoms.positions[members[:, 0]] + members[:, 1:] @ cell
            cluster = Atoms(numbers=atoms.numbers[members[:, 0]], positions=positions, pbc=False)
            result[chunk] = self._forward([cluster])[: len(chunk)]
        return result
