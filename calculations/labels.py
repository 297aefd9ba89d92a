"""Calcfunctions around labelling: structures in, one labelled data set out, every step in the graph.

The labelling work chain turns whatever it is given into one unlabelled ``mofal.dataset`` (the *source*),
splits it into ``StructureData`` for CP2K, and collects the converged results back onto the source's frames,
so that per-frame metadata (charge, multiplicity, a cluster's ``role`` and ``parent_index`` arrays) survive.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.cp2k.labels import label_rows
from aiida_mofal.data import DatasetData
from aiida_mofal.mlp.configurations import ENERGY_KEY, FORCES_KEY, STRESS_KEY, ConfigurationError

__all__ = (
    'collect_labels',
    'dataset_from_structures',
    'free_atoms',
    'isolated_atom_energies',
    'label_rows',
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


def _positions(value) -> dict[int, object]:
    """Position in a label node → what it is (``frames``/``elements`` entry: one value, or a list per position)."""
    return dict(enumerate(value)) if isinstance(value, list) else {0: value}


@calcfunction
def structures_from_dataset(dataset: DatasetData, indices: orm.List | None = None) -> dict[str, orm.StructureData]:
    """Split a data set into one ``StructureData`` per frame (outputs ``frame_0``, ``frame_1``, ...).

    ``indices``: only those frames (the packed labelling path makes them only for structures it reruns alone).

    The names are for people reading the graph; code takes a frame's index from its position (see
    ``LabelWorkChain``), never from the name.

    A cluster keeps its box as the cell (StructureData needs one) with ``pbc`` false; the CP2K input decides
    the box it really uses from the cluster's extent.
    """
    outputs = {}
    wanted = None if indices is None else set(indices.get_list())
    for index, atoms in enumerate(dataset.get_atoms()):
        if wanted is not None and index not in wanted:
            continue
        if not atoms.pbc.any() and abs(atoms.cell.volume) < 1e-6:
            atoms.cell = np.ptp(atoms.positions, axis=0) + 10.0
        outputs[f'frame_{index}'] = orm.StructureData(ase=atoms)
    return outputs


@calcfunction
def isolated_atom_energies(elements: orm.Dict | None = None, **labels: orm.ArrayData) -> orm.Dict:
    """Map each element to the energy (eV) of its free atom from ``labels``.

    A keyword of ``labels`` is the element (``Zn``) unless ``elements`` maps it to a list of the element at each
    position of a packed job's label node (None where that position is no free atom).
    """
    which = elements.get_dict() if elements is not None else {}
    energies = {}
    for key, node in sorted(labels.items()):
        rows = label_rows(node)
        for position, symbol in _positions(which.get(key, key)).items():
            if symbol is not None and position in rows:
                energies[symbol] = rows[position]['energy']
    return orm.Dict(dict(sorted(energies.items())))


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
    part of a name), or, for a packed job's one label node, to the list of the source index of each position in
    that job (None for a position that is no frame of ``source``, or whose label is taken from elsewhere). Each
    kept frame records ``source_index``; frames keep the order of ``source``. Energy in eV, forces eV/Å, stress
    eV/Å³ (ASE convention) as parsed by the ``mofal.cp2k`` parser. The level of theory recorded
    on the data set is derived from the labelling ``settings`` (the resolved protocol).
    """
    from aiida_mofal.cp2k.inputs import level_of_theory

    source_frames = source.get_atoms()
    indices = frames.get_dict()
    missing = sorted(set(labels) - set(indices))
    if missing:
        raise ConfigurationError(f'labels {missing} have no entry in `frames` (the map from label to frame index).')
    found = []
    for key, node in labels.items():
        rows = label_rows(node)
        for position, index in _positions(indices[key]).items():
            if index is None or position not in rows:
                continue
            if not 0 <= int(index) < len(source_frames):
                raise ConfigurationError(
                    f'label {key} points to frame {index}, but the source data set has {len(source_frames)} frames.'
                )
            found.append((int(index), rows[position]))
    labelled = []
    for index, row in sorted(found, key=lambda item: item[0]):
        atoms = source_frames[index].copy()
        atoms.info[ENERGY_KEY] = row['energy']
        atoms.arrays[FORCES_KEY] = np.asarray(row['forces'], dtype=float)
        if 'stress' in row and atoms.pbc.all():
            atoms.info[STRESS_KEY] = np.asarray(row['stress'], dtype=float)
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
