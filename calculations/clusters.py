"""Thin calcfunctions over the structures science layer: built cells in the provenance graph."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

__all__ = ('build_uio66_structure',)


@calcfunction
def build_uio66_structure(parameters: orm.Dict) -> orm.StructureData:
    """Build a disordered UiO-66 cell from ``{supercell, linker, hf, brick, seed, metal}`` or ``{preset, seed, metal}``.

    ``build_uio66`` makes the first, ``structures.presets`` the cluster paper's cells.

    The defect counts the builder reports (``n_linker_vacancies``, ``c_hf``, ...) become the node's extras.
    """
    from aiida_mofal.structures.presets import build_uio66_preset
    from aiida_mofal.structures.uio66 import build_uio66

    values = parameters.get_dict()
    atoms = build_uio66_preset(**values) if 'preset' in values else build_uio66(**values)
    structure = orm.StructureData(ase=atoms)
    structure.base.attributes.set('mofal_builder', {k: v for k, v in atoms.info.items() if np.isscalar(v)})
    return structure
