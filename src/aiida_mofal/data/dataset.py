"""``mofal.dataset``: many labelled configurations in one node.

One node per set, not one per structure: an active-learning campaign makes thousands of configurations,
and one ``StructureData`` each would bloat the database (aiida-core #5025). The configurations live as one
extxyz file in the node's repository, in MACE's key convention (see
:mod:`aiida_mofal.mlp.configurations`), so the file goes to ``mace_run_train`` unchanged. Attributes hold
only what people query: counts, elements, labels, level of theory, kinds, isolated-atom energies, sha256.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from aiida import orm
from ase import Atoms

from aiida_mofal.mlp.configurations import (
    ConfigurationError,
    element_symbols,
    labels_of,
    read_extxyz,
    validate_configuration,
    write_extxyz,
)

from .attributes import stored_attribute

__all__ = ['DatasetData']


class DatasetData(orm.Data):
    """Labelled (or not yet labelled) configurations: periodic cells and non-periodic clusters.

    Units and keys: ``REF_energy`` eV, ``REF_forces`` eV/Å, ``REF_stress`` eV/Å³ as a Voigt 6-vector with
    ASE's sign convention (``P = -tr(σ)/3``); ``config_type`` ``periodic``/``cluster``, ``charge``,
    ``multiplicity`` per configuration; any extra per-atom arrays (e.g. cluster ``role``) are kept.

    Each label is either on every configuration or on none (stress: on every periodic one or none), so
    that a training run never meets a half-labelled set.
    """

    FILENAME = 'dataset.extxyz'

    def __init__(
        self,
        configurations: Iterable[Atoms] = (),
        *,
        level_of_theory: Mapping | None = None,
        isolated_atom_energies: Mapping[str, float] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        frames = [validate_configuration(atoms, f'configuration {i}') for i, atoms in enumerate(configurations)]
        labels = self._check_labels(frames)
        text = write_extxyz(frames).encode()
        self.base.repository.put_object_from_bytes(text, self.FILENAME)
        kinds = Counter(atoms.info['config_type'] for atoms in frames)
        numbers = [z for atoms in frames for z in atoms.numbers]
        self.base.attributes.set_many(
            {
                'count': len(frames),
                'num_atoms': len(numbers),
                'elements': element_symbols(numbers),
                'labels': sorted(labels),
                'config_types': dict(sorted(kinds.items())),
                'level_of_theory': dict(level_of_theory or {}),
                'isolated_atom_energies': self._check_e0s(isolated_atom_energies),
                'sha256': hashlib.sha256(text).hexdigest(),
            }
        )
        self._frames = frames

    @staticmethod
    def _check_labels(frames: list[Atoms]) -> set[str]:
        present = [labels_of(atoms) for atoms in frames]
        labels = set().union(*present) if present else set()
        for label in ('energy', 'forces'):
            missing = [i for i, found in enumerate(present) if label in labels and label not in found]
            if missing:
                raise ConfigurationError(
                    f'{label} is given for some configurations but missing for {len(missing)} '
                    f'(first: configuration {missing[0]}); a data set is labelled all through or not at all.'
                )
        if 'stress' in labels:
            missing = [
                i
                for i, (atoms, found) in enumerate(zip(frames, present))
                if atoms.info['config_type'] == 'periodic' and 'stress' not in found
            ]
            if missing:
                raise ConfigurationError(
                    f'stress is given for some periodic configurations but missing for {len(missing)} '
                    f'(first: configuration {missing[0]}).'
                )
        return labels

    @staticmethod
    def _check_e0s(energies: Mapping[str, float] | None) -> dict[str, float]:
        from ase.data import atomic_numbers

        result = {}
        for symbol, energy in dict(energies or {}).items():
            if symbol not in atomic_numbers:
                raise ConfigurationError(f'isolated-atom energy for {symbol!r}, which is not an element symbol.')
            value = float(energy)
            if value != value or value in (float('inf'), float('-inf')):
                raise ConfigurationError(f'isolated-atom energy of {symbol} is not finite.')
            result[symbol] = value
        return result

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> DatasetData:
        """Create a data set from an extxyz file (one or many frames, MACE's ``REF_*`` keys)."""
        return cls(read_extxyz(str(path)), **kwargs)

    count = stored_attribute('count', 'Number of configurations.')

    elements = stored_attribute('elements', 'Element symbols present, sorted by atomic number.')

    labels = stored_attribute('labels', 'Which of energy, forces, stress the configurations carry.')

    level_of_theory = stored_attribute(
        'level_of_theory', 'How the labels were made (method, functional, basis, cutoff, code version...).'
    )

    isolated_atom_energies = stored_attribute(
        'isolated_atom_energies', "Energies of the isolated atoms at the same level of theory (MACE's E0s), eV."
    )

    config_types = stored_attribute('config_types', 'How many configurations of each kind (periodic, cluster).')

    def get_text(self) -> str:
        """Return the extxyz text as stored."""
        return self.base.repository.get_object_content(self.FILENAME, mode='r')

    def get_atoms(self) -> list[Atoms]:
        """Return the configurations as ASE atoms (fresh copies, safe to modify)."""
        frames = getattr(self, '_frames', None)
        if frames is None:
            frames = read_extxyz(self.get_text())
            self._frames = frames
        return [atoms.copy() for atoms in frames]

    def export(self, path: str | Path) -> Path:
        """Write the extxyz file (MACE's ``REF_*`` keys) to ``path``."""
        path = Path(path)
        path.write_text(self.get_text())
        return path
