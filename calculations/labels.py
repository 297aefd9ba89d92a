"""Calcfunctions around labelling: structures in, one labelled data set out, every step in the graph.

The labelling work chain turns whatever it is given into one unlabelled ``mofal.dataset`` (the *source*),
splits it into ``StructureData`` for CP2K, and collects the converged results back onto the source's frames,
so that per-frame metadata (charge, multiplicity, a cluster's ``role`` and ``parent_index`` arrays) survive.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data import DatasetData
from aiida_mofal.mlp.configurations import ENERGY_KEY, FORCES_KEY, STRESS_KEY, ConfigurationError

__all__ = (
    'collect_labels',
    'dataset_from_structures',
    'free_atoms',
    'isolated_atom_energies',
    'pack_structures',
    'structures_from_dataset',
)


@calcfunction
def dataset_from_structures(structure_info: orm.Dict, **structures: orm.StructureData) -> DatasetData:
    """Gather ``StructureData`` into one unlabelled data set, in sorted key order.

    ``structure_info`` maps a key to ``{'config_type', 'charge', 'multiplicity'}``; a structure without an
    entry is periodic when its ``pbc`` is all true, else a neutral singlet cluster.
    """
    info = structure_info.get_dict()
    frames = []
    for key in sorted(structures):
        atoms = structures[key].get_ase()
        atoms.info.update({'label_key': key, **info.get(key, {})})
        if atoms.info.get('config_type') == 'cluster':
            atoms.pbc = False
        frames.append(atoms)
    return DatasetData(frames)


@calcfunction
def structures_from_dataset(dataset: DatasetData) -> dict[str, orm.StructureData]:
    """Split a data set into one ``StructureData`` per frame (outputs ``frame_0``, ``frame_1``, ...).

    The names are for people reading the graph; code takes a frame's index from its position (see
    ``LabelWorkChain``), never from the name.

    A cluster keeps its box as the cell (StructureData needs one) with ``pbc`` false; the CP2K input decides
    the box it really uses from the cluster's extent.
    """
    outputs = {}
    for index, atoms in enumerate(dataset.get_atoms()):
        if not atoms.pbc.any() and abs(atoms.cell.volume) < 1e-6:
            atoms.cell = np.ptp(atoms.positions, axis=0) + 10.0
        outputs[f'frame_{index}'] = orm.StructureData(ase=atoms)
    return outputs


@calcfunction
def isolated_atom_energies(**labels: orm.ArrayData) -> orm.Dict:
    """Map each element (the keyword, e.g. ``Zn``) to the energy (eV) of its free atom from ``labels``."""
    return orm.Dict({symbol: float(node.get_array('energy')[0]) for symbol, node in sorted(labels.items())})


@calcfunction
def collect_labels(
    source: DatasetData,
    settings: orm.Dict,
    isolated_atom_energies: orm.Dict,
    frames: orm.Dict,
    **labels: orm.ArrayData,
) -> DatasetData:
    """Attach converged ``labels`` to the source's frames; unlabelled frames are left out.

    ``frames`` maps each keyword of ``labels`` to the index of its frame in ``source`` (the index is data, not
    part of a name). Each kept frame records ``source_index``; frames keep the order of ``source``. Energy in
    eV, forces eV/Å, stress eV/Å³ (ASE convention) as parsed by the ``mofal.cp2k`` parser. The level of theory
    recorded on the data set is derived from the labelling ``settings`` (the resolved protocol).
    """
    from aiida_mofal.cp2k.inputs import level_of_theory

    source_frames = source.get_atoms()
    indices = frames.get_dict()
    missing = sorted(set(labels) - set(indices))
    if missing:
        raise ConfigurationError(f'labels {missing} have no entry in `frames` (the map from label to frame index).')
    labelled = []
    for key in sorted(labels, key=lambda name: indices[name]):
        index = int(indices[key])
        if not 0 <= index < len(source_frames):
            raise ConfigurationError(
                f'label {key} points to frame {index}, but the source data set has {len(source_frames)} frames.'
            )
        atoms = source_frames[index].copy()
        arrays = labels[key]
        atoms.info[ENERGY_KEY] = float(arrays.get_array('energy')[0])
        atoms.arrays[FORCES_KEY] = np.asarray(arrays.get_array('forces'), dtype=float)
        if 'stress' in arrays.get_arraynames() and atoms.pbc.all():
            atoms.info[STRESS_KEY] = np.asarray(arrays.get_array('stress'), dtype=float)
        atoms.info['source_index'] = index
        labelled.append(atoms)
    return DatasetData(
        labelled,
        level_of_theory=level_of_theory(settings.get_dict()),
        isolated_atom_energies=isolated_atom_energies.get_dict(),
    )


@calcfunction
def free_atoms(dataset: DatasetData) -> dict[str, orm.StructureData]:
    """One free atom per element of ``dataset`` (outputs named by symbol), for isolated-atom energies (E0s).

    Each is a non-periodic single atom; the labelling input gives it its ground-state multiplicity
    (``aiida_mofal.cp2k.elements``), spin-polarised where the atom is open-shell.
    """
    from ase import Atoms

    outputs = {}
    for symbol in dataset.elements:
        atoms = Atoms(symbol, positions=[[5.0, 5.0, 5.0]], cell=[10.0, 10.0, 10.0], pbc=False)
        outputs[symbol] = orm.StructureData(ase=atoms)
    return outputs


@calcfunction
def pack_structures(source: DatasetData, settings: orm.Dict, members: orm.List) -> DatasetData:
    """Return the structures of one packed CP2K job (``mofal.cp2k.packed``), in the order of ``members``.

    Each member is ``{'frame': i}`` (frame ``i`` of ``source``) or ``{'element': 'Zn'}`` (that element's free atom,
    as :func:`~aiida_mofal.cp2k.inputs.isolated_atom` builds it for the single-job path). A calcfunction, so that
    the job's input is linked to the source data set it was cut from.
    """
    from aiida_mofal.cp2k.inputs import isolated_atom

    frames = source.get_atoms()
    resolved = settings.get_dict()
    packed = []
    for member in members.get_list():
        if 'element' in member:
            atoms = isolated_atom(member['element'], resolved)
            atoms.cell = [10.0, 10.0, 10.0]
        else:
            atoms = frames[int(member['frame'])]
        packed.append(atoms)
    return DatasetData(packed)
