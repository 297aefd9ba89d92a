"""Uncertainty-gated exploration in the MD driver, for real: a walk into unknown environments ends at its first
unknown frame, a walk that stays where the model knows runs its whole schedule (one job, shipped copies only).
"""

import mace  # noqa: F401  (first: it lets e3nn load its constants)
import numpy as np
from ase.build import bulk

from aiida_mofal.mlp.features import FeatureExtractor
from aiida_mofal.uncertainty.gmm import DensityModel

from .md_driver import MODEL, mace_job, run_job, walk_files


def copper(a: float, seed: int, rattle: float = 0.02) -> object:
    atoms = bulk('Cu', 'fcc', a=a, cubic=True) * (2, 2, 2)
    atoms.rattle(rattle, seed=seed)
    return atoms


def test_a_gated_walk_stops_at_its_first_unknown_frame_and_a_known_one_runs_on(tmp_path):
    extractor = FeatureExtractor(str(MODEL), dtype='float64')
    # what the density model knows: the cell at 3.6 Å, displaced as much as a 50 K walk displaces it and more
    known = [copper(3.6, seed, rattle) for seed in range(2) for rattle in (0.02, 0.04, 0.06)]
    features = np.concatenate(extractor.features_many(known))
    density = DensityModel.fit(features, ['Cu'] * len(features), max_components=1, calibration_fraction=0.0)
    density.save(tmp_path / 'density.npz')
    settings = {'ensemble': 'nvt', 'timestep': 2.0, 'temperature_damping': 20.0, 'dump_every': 5,
                'thermo_every': 5, 'schedule': [{'steps': 30, 'temperature': 50.0}]}  # fmt: skip
    gate = {'unknown_fraction': 0.5, 'every': 1, 'feature_model': str(MODEL),
            'density_model': str(tmp_path / 'density.npz')}  # fmt: skip
    squeezed, steady = copper(3.25, 7), copper(3.6, 8)  # a 10 % compressed cell: every atom is new to it
    directory = mace_job(tmp_path / 'run', 'ase', [(squeezed, settings), (steady, settings)], gate=gate)
    first, second = run_job(directory)['walks']
    assert first['status'] == 'finished' and 'stopped by the gate' in first['message']
    assert first['completed_steps'] == 5 and first['gate']['stopped']['step'] == 5  # its first dumped frame
    assert first['gate']['stopped']['unknown_fraction'] >= 0.5 and first['gate']['first_unknown_step'] == 5
    assert walk_files(directory, 0)['trajectory']['steps'].tolist() == [0, 5]  # ends where unknown atoms appear
    assert second['status'] == 'finished' and second['completed_steps'] == 30 and second['gate']['stopped'] is None
    assert second['gate']['checks'] == 6  # every dumped frame after the start was scored
    assert walk_files(directory, 1)['trajectory']['steps'].tolist() == [0, 5, 10, 15, 20, 25, 30]
