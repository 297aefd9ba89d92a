"""Read a CP2K label node back per structure: one code for single and packed jobs.

Here (not in ``calculations/``) because the campaign's provenance reader needs it too, and science code never
imports the AiiDA plugin layers.
"""

from __future__ import annotations

import numpy as np

__all__ = ('label_rows',)


def label_rows(labels) -> dict[int, dict]:
    """Return ``{position: {'energy', 'forces'[, 'stress']}}`` of a label ``ArrayData``, in eV, eV/Å, eV/Å³.

    A ``mofal.cp2k`` label (one structure) is position 0. A ``mofal.cp2k.packed`` job's one ``labels`` node holds
    every structure it labelled: ``index`` (position of each row's structure in the job's ``structures``),
    ``energy``, ``natoms``, ``forces`` (the rows' atoms one after the other) and, where a row is periodic,
    ``stress`` (NaN for the others).
    """
    names = labels.get_arraynames()
    if 'index' not in names:
        row = {'energy': float(labels.get_array('energy')[0]), 'forces': labels.get_array('forces')}
        if 'stress' in names:
            row['stress'] = labels.get_array('stress')
        return {0: row}
    energy, forces, natoms = (labels.get_array(name) for name in ('energy', 'forces', 'natoms'))
    stress = labels.get_array('stress') if 'stress' in names else None
    ends = np.cumsum(natoms)
    rows = {}
    for row, position in enumerate(labels.get_array('index')):
        entry = {'energy': float(energy[row]), 'forces': forces[ends[row] - natoms[row] : ends[row]]}
        if stress is not None and np.isfinite(stress[row]).all():
            entry['stress'] = stress[row]
        rows[int(position)] = entry
    return rows
