import numpy as np

from aiida_mofal.clusters.extract import extract_clusters
from aiida_mofal.clusters.plot import plot_cluster

from .conftest import read_structure


def test_plot_writes_png(tmp_path):
    atoms = read_structure('ZnIm2-sod_Lewis2009.cif')
    (cluster,) = extract_clusters(atoms, [int(np.flatnonzero(atoms.numbers == 30)[0])])
    path = plot_cluster(cluster, tmp_path / 'sub' / 'zn.png')
    data = path.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 10_000
