"""AiiDA data plugins of aiida-mofal: labelled data sets, MACE models, density models, MD trajectories."""

from .dataset import DatasetData
from .density_model import DensityModelData
from .mace_model import MaceModelData
from .trajectory import MdTrajectoryData

__all__ = ['DatasetData', 'DensityModelData', 'MaceModelData', 'MdTrajectoryData']
