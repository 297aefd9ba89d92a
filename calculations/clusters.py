"""Thin calcfunctions over the structures science layer: built cells in the provenance graph."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

__all__ = ('build_uio66_structure',)


@calcfunction
def build_uio66_structure(parameters: orm.Dict) -> orm.StructureData:
    """Build a disordered UiO-66 cell from ``{supercell, linker, hf, brick, seed, metal}`` (see ``build_uio66``).

    The defect counts the builder reports (``n_linker_vacancies``, ``c_hf``, ...) become the node's extras.
    """
    from aiida_mofal.structures.uio66 import build_uio66

    atoms = build_uio66(**parameters.get_dict())
    structure = orm.StructureData(ase=atoms)
    structure.base.attributes.set('mofal_builder', {k: v for k, v in atoms.info.items() if np.isscalar(v)})
    return structure
