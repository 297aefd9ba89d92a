"""Structure files in, ``Atoms`` ready for labelling out: one reader for ``mofal label`` and the campaign targets.

Anything ASE reads (extxyz, xyz, CIF, ...) becomes frames whose ``info`` holds only scalars and says what the
labelling input needs: ``config_type`` (``periodic`` or ``cluster``), ``charge``, ``multiplicity`` and the
``source_file``. Errors are ``ValueError`` naming the file, the frame and the fix (the CLI shows them as they are).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from ase import Atoms

__all__ = ('read_frames', 'read_structure')

_SCALARS = (str, int, float, np.integer, np.floating)


def _clean(atoms: Atoms) -> Atoms:
    """Drop calculators and non-scalar metadata (CIF readers leave space groups, occupancies in ``info``)."""
    atoms.calc = None
    atoms.info = {key: value for key, value in atoms.info.items() if isinstance(value, _SCALARS)}
    for name in [name for name, array in atoms.arrays.items() if array.dtype == object]:
        atoms.arrays[name] = atoms.arrays[name].astype(str)  # e.g. a cluster's `role`
    return atoms


def _refuse_partial_occupancy(atoms: Atoms, name: str) -> None:
    """Refuse a CIF with partially occupied sites: ASE keeps every component, so the atoms would not be one structure.

    ASE's CIF reader records occupancies in ``info['occupancy']`` (site → {element: fraction}); dropping them
    silently (as ``_clean`` drops other metadata) would label disorder as if it were a real configuration.
    """
    occupancy = atoms.info.get('occupancy')
    if not isinstance(occupancy, dict):
        return
    partial = {site: fractions for site, fractions in occupancy.items()
               if isinstance(fractions, dict) and any(float(f) < 0.999 for f in fractions.values())}  # fmt: skip
    if partial:
        site, fractions = next(iter(partial.items()))
        raise ValueError(
            f'{name}: {len(partial)} partially occupied site(s) (e.g. site {site}: {fractions}); resolve the disorder '
            'first (keep one component with full occupancy, e.g. in VESTA or with pymatgen), then read it again.'
        )


def read_frames(
    files: Iterable[str | Path], cluster: bool = False, charge: int | None = None, multiplicity: int | None = None
) -> list[Atoms]:
    """Read every frame of ``files`` and mark it periodic or cluster.

    A frame keeps the ``config_type``, ``charge`` and ``multiplicity`` its extxyz header carries unless
    ``cluster``, ``charge`` or ``multiplicity`` say otherwise. A frame that is neither marked nor periodic in all
    three directions is refused: a cell without periodicity would be labelled as something it is not.

    :raises ValueError: for a file ASE cannot read, or a non-periodic frame that is not marked a cluster.
    """
    import ase.io

    from aiida_mofal.mlp.configurations import decode_strings

    frames = []
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                read = ase.io.read(str(path), index=':')
        except Exception as exception:
            raise ValueError(f'{path}: ASE cannot read it ({exception}).') from None
        for index, atoms in enumerate(read):
            decode_strings(atoms)  # strings our extxyz writer encoded (a cut cluster's roles, ...)
            _refuse_partial_occupancy(atoms, f'{path} frame {index}')
            _clean(atoms)
            if cluster:
                atoms.pbc = False
                atoms.info['config_type'] = 'cluster'
            elif 'config_type' not in atoms.info:
                if not atoms.pbc.all():
                    raise ValueError(
                        f'{path} frame {index}: not periodic in all directions (pbc={atoms.pbc.tolist()}); '
                        'give it a cell, or pass --cluster (cluster=True in Python) for a non-periodic molecule.'
                    )
                atoms.info['config_type'] = 'periodic'
            if charge is not None:
                atoms.info['charge'] = charge
            if multiplicity is not None:
                atoms.info['multiplicity'] = multiplicity
            atoms.info['source_file'] = Path(path).name
            frames.append(atoms)
    return frames


def read_structure(path: str | Path) -> Atoms:
    """Read the one periodic, neutral, closed-shell structure of ``path`` (a campaign target, an MD start).

    :raises ValueError: for an unreadable file, a file with several frames, or a non-periodic frame.
    """
    frames = read_frames([path], cluster=False, charge=0, multiplicity=1)
    if len(frames) != 1:
        raise ValueError(f'{path} holds {len(frames)} frames; give one.')
    return frames[0]
