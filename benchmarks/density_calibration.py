"""Calibration of the density model: BIC picks and flagged fractions of fresh in-distribution atoms.

Run: .venv/bin/python benchmarks/density_calibration.py [--dimensions 64 128] [--mace-channels 64]
     [--skip-mace]

Two measurements, each with the old settings (no PCA, ``reg_covar`` 1e-6) and the defaults:

* synthetic: three well separated clusters per element in 64-D / 128-D, each a correlated cloud (an 8-D
  latent Gaussian mapped linearly into the feature space, plus 5 % isotropic noise: features of one
  environment are correlated, as MACE's are), 300 training points per cluster; fresh points drawn from the
  same distribution. Printed: the number of components BIC picks, and the fraction of fresh points flagged
  unknown at the nominal 1st percentile.
* MACE: a random MACE model (H, C, O, Zr; ``{c}x0e+{c}x1o``) on thermally rattled pristine UiO-66 cells
  (training: 4 frames; fresh: 4 other frames of the same distribution). Printed per element as above.

The stored calibration check (``DensityModel.calibration``, held-out configurations) is printed beside the
fresh-sample figure: the check estimates what the fresh sample measures.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OLD = {'pca_components': None, 'reg_covar': 1e-6, 'calibration_fraction': 0.2}


def clusters(dimension: int, per_cluster: int, seed: int, mixing=None):
    """Three separated correlated clouds in ``dimension``-D; returns (points, mixing) to draw more of the same."""
    rng = np.random.default_rng(seed)
    if mixing is None:
        base = np.random.default_rng(1000 + dimension)
        mixing = [(base.normal(0, 1, (8, dimension)), base.normal(0, 6, dimension)) for _ in range(3)]
    parts = [
        rng.normal(size=(per_cluster, 8)) @ m + c + rng.normal(0, 0.05 * 2.8, (per_cluster, dimension))
        for m, c in mixing
    ]
    return np.concatenate(parts), mixing


def synthetic(dimensions, quiet=False):
    from aiida_mofal.uncertainty.gmm import DensityModel

    rows = []
    for dimension in dimensions:
        train, mixing = clusters(dimension, 300, seed=0)
        fresh, _ = clusters(dimension, 2000, seed=1, mixing=mixing)
        groups = np.arange(len(train)) // 30  # 30 "configurations"
        symbols = ['C'] * len(train)
        for label, settings in (('before (no PCA)', OLD), ('after (defaults)', {})):
            start = time.perf_counter()
            density = DensityModel.fit(train, symbols, groups=groups, **settings)
            seconds = time.perf_counter() - start
            flagged = density.is_unknown(fresh, ['C'] * len(fresh)).mean()
            check = density.calibration['C']
            rows.append(
                (dimension, label, density.n_components['C'], 100 * flagged, 100 * check['flagged_fraction'], seconds)
            )
    print('synthetic: three separated clusters, 900 training points, 6,000 fresh points, nominal 1 %')
    print(f'{"dim":>4} {"settings":<18} {"BIC pick":>8} {"fresh flagged":>14} {"held-out check":>15} {"fit":>7}')
    for dimension, label, picked, fresh, check, seconds in rows:
        print(f'{dimension:>4} {label:<18} {picked:>8} {fresh:>13.2f}% {check:>14.2f}% {seconds:>6.1f}s')


def mace(channels: int):
    sys.path.insert(0, str(ROOT))
    import tempfile

    from aiida_mofal.mlp.features import FeatureExtractor
    from aiida_mofal.structures.uio66 import uio66_unit_cell
    from aiida_mofal.uncertainty.gmm import DensityModel
    from tests.mlp.mace_models import build_mace_model

    with tempfile.TemporaryDirectory() as directory:
        path = build_mace_model(
            Path(directory) / 'model.model', atomic_numbers=[1, 6, 8, 40], hidden_irreps=f'{channels}x0e+{channels}x1o'
        )
        extractor = FeatureExtractor(path)
        cell = uio66_unit_cell('Zr')

        def frames(seeds):
            out = []
            for seed in seeds:
                atoms = cell.copy()
                atoms.rattle(0.05, seed=seed)
                out.append(atoms)
            return out

        train, fresh = frames(range(4)), frames(range(100, 104))
        x = np.concatenate(extractor.features_many(train))
        s = np.array([a for atoms in train for a in atoms.get_chemical_symbols()])
        g = np.concatenate([np.full(len(atoms), i) for i, atoms in enumerate(train)])
        y = np.concatenate(extractor.features_many(fresh))
        t = np.array([a for atoms in fresh for a in atoms.get_chemical_symbols()])
    print(
        f'\nMACE {channels}x0e+{channels}x1o (random weights), UiO-66 rattled 0.05 Å: '
        f'{len(x)} training atoms (4 frames), {len(y)} fresh atoms (4 frames), nominal 1 %'
    )
    print(f'{"settings":<18} {"el":<3} {"dim":>4} {"BIC pick":>8} {"fresh flagged":>14} {"held-out check":>15}')
    for label, settings in (('before (no PCA)', OLD), ('after (defaults)', {})):
        density = DensityModel.fit(x, s, groups=g, **settings)
        for symbol, element in density.elements.items():
            flagged = density.is_unknown(y[t == symbol], t[t == symbol]).mean()
            check = element.calibration
            print(
                f'{label:<18} {symbol:<3} {element.dimension:>4} {element.n_components:>8} {100 * flagged:>13.2f}% '
                f'{100 * check["flagged_fraction"]:>14.2f}%'
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dimensions', type=int, nargs='+', default=[64, 128])
    parser.add_argument('--mace-channels', type=int, default=64)
    parser.add_argument('--skip-mace', action='store_true')
    args = parser.parse_args()
    warnings.simplefilter('ignore')
    synthetic(args.dimensions)
    if not args.skip_mace:
        mace(args.mace_channels)


if __name__ == '__main__':
    main()
