"""AiiDA data plugins of aiida-mofal: labelled data sets and MACE models."""

from .dataset import DatasetData
from .mace_model import MaceModelData

__all__ = ['DatasetData', 'MaceModelData']
