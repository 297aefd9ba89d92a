"""Thin calcfunctions over the structures/clusters science layer: built cells and cut clusters in the graph."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mofal.data import DatasetData

__all__ = ('build_uio66_structure', 'extract_cluster_set')


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


@calcfunction
def extract_cluster_set(
    structure: orm.StructureData,
    flagged: orm.List,
    settings: orm.Dict,
    uncertainty: orm.ArrayData | None = None,
) -> DatasetData:
    """Cut H-capped clusters around the ``flagged`` atoms of ``structure`` into one unlabelled data set.

    ``settings``: keyword arguments of :func:`aiida_mofal.clusters.extract.extract_clusters` (``mantle_depth``,
    ``vacuum``, ``max_clusters``, ``merge_depth``). ``uncertainty`` (array ``uncertainty``, one value per atom
    or per flagged atom) orders the clusters, most uncertain first. Each cluster keeps its ``charge``,
    ``multiplicity``, ``role`` and ``parent_index``, ready for the ``mofal.label`` work chain.
    """
    from aiida_mofal.clusters.extract import extract_clusters

    values = uncertainty.get_array('uncertainty') if uncertainty is not None else None
    clusters = extract_clusters(structure.get_ase(), flagged.get_list(), uncertainty=values, **settings.get_dict())
    return DatasetData(clusters)
