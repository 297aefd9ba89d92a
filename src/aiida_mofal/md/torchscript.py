"""A MACE model as TorchScript: compiled once where mace-torch is, evaluated where only torch is.

Importing mace-torch costs a job more than anything else before its first step (``mace.modules`` pulls in
``mace.tools`` whole: training, torchmetrics, ``torch._dynamo``, scipy's signal module; 3–4 times the import of torch
itself, see ``benchmarks/md_overhead.py``). A TorchScript archive of the model carries its own code, so the remote MD
driver loads it with ``torch.jit.load`` and never imports mace. :func:`compile_model` writes the archive (needs
mace-torch); :class:`TorchScriptCalculator` is the ASE calculator the driver uses instead of ``MACECalculator``: the
same graph (neighbour list within the model's ``r_max``, one-hot species, unit cell shifts), the same outputs (energy
eV, forces eV/Å, stress eV/Å^3 in ASE's Voigt order and sign).

Pure on purpose (numpy, ase, and torch imported where used): the driver runs a copy of this module beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

__all__ = ['TorchScriptCalculator', 'compile_model']


def compile_model(source, target: str | Path, dtype: str = 'float64') -> Path:
    """Write the TorchScript archive of the MACE model ``source`` (in ``dtype``) to ``target``.

    ``source`` is a MACE ``torch.nn.Module`` (``MaceModelData.get_module()``, rebuilt from weights) or the path of a
    MACE ``.model`` pickle *that the caller made or trusts*: unpickling a file runs any code it holds, so aiida-mofal
    itself always passes a module (see ``aiida_mofal.mlp.safe_model``).
    """
    import mace  # noqa: F401  (before torch.load: mace lets e3nn load its constants)
    import torch
    from e3nn.util import jit

    if isinstance(source, str | Path):
        model = torch.load(str(source), map_location='cpu', weights_only=False)  # a trusted file (docstring)
    else:
        model = source
    model = model.to(torch.float64 if dtype == 'float64' else torch.float32).eval()
    for parameter in model.parameters():
        parameter.requires_grad = False
    # e3nn's compile, as mace-torch's own exports do: it scripts or traces each e3nn block by its compile mode.
    # A bare torch.jit.script refuses the trained models' gate (e3nn.nn.Activation) and, once it has failed in a
    # process, every later model too ("Can't redefine method").
    jit.compile(model).save(str(target))
    return Path(target)


def _neighbours(atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return sender, receiver and integer cell shifts of every pair within ``cutoff`` (no self pair at zero shift)."""
    try:
        from matscipy.neighbours import neighbour_list  # what MACE itself uses: fast, C

        return neighbour_list('ijS', atoms, cutoff)
    except ImportError:
        from ase.neighborlist import primitive_neighbor_list

        return primitive_neighbor_list('ijS', atoms.pbc, atoms.cell.array, atoms.positions, cutoff)


class TorchScriptCalculator(Calculator):
    """ASE calculator of a TorchScript MACE model (see :func:`compile_model`); energy, forces, stress."""

    implemented_properties = ['energy', 'free_energy', 'forces', 'stress']

    def __init__(self, path: str | Path, device: str = 'cpu', **kwargs):
        import torch

        super().__init__(**kwargs)
        self.torch = torch
        self.device = device
        self.model = torch.jit.load(str(path), map_location=device)
        self.dtype = next(self.model.parameters()).dtype
        self.r_max = float(self.model.r_max)
        self.z_table = [int(z) for z in self.model.atomic_numbers]
        heads = list(getattr(self.model, 'heads', None) or ['Default'])
        self.head = heads.index('Default') if 'Default' in heads else 0

    def _graph(self, atoms) -> dict:
        torch = self.torch
        sender, receiver, shifts = _neighbours(atoms, self.r_max)
        species = np.array([self.z_table.index(int(z)) for z in atoms.numbers])
        one_hot = np.zeros((len(atoms), len(self.z_table)))
        one_hot[np.arange(len(atoms)), species] = 1.0
        cell = np.array(atoms.cell.array)

        def tensor(value, dtype=self.dtype):
            return torch.tensor(np.asarray(value), dtype=dtype, device=self.device)

        return {
            'positions': tensor(atoms.positions),
            'node_attrs': tensor(one_hot),
            'edge_index': tensor(np.stack([sender, receiver]), torch.long),
            'shifts': tensor(shifts @ cell),
            'unit_shifts': tensor(shifts),
            'cell': tensor(cell),
            'batch': torch.zeros(len(atoms), dtype=torch.long, device=self.device),
            'ptr': torch.tensor([0, len(atoms)], dtype=torch.long, device=self.device),
            'head': torch.tensor([self.head], dtype=torch.long, device=self.device),
        }

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        """Evaluate the model on ``atoms`` (all properties in one pass, as MACECalculator does)."""
        super().calculate(atoms, properties, system_changes)
        # the optimising graph executor re-profiles the first calls and is slower than eager for MACE on CPU
        with self.torch.jit.optimized_execution(False):
            output = self.model(self._graph(self.atoms), compute_stress=True, training=False)
        energy = float(output['energy'].detach().cpu().item())
        stress = output['stress'].detach().cpu().numpy().reshape(3, 3)
        self.results = {
            'energy': energy,
            'free_energy': energy,
            'forces': output['forces'].detach().cpu().numpy().astype(float),
            'stress': np.array([stress[0, 0], stress[1, 1], stress[2, 2], stress[1, 2], stress[0, 2], stress[0, 1]]),
        }
