"""The three figures of the mechanical analyses are written as PNG files."""

import numpy as np

from aiida_mofal.analysis.eos import EV_PER_A3_IN_GPA, eos_energy, eos_pressure, fit_energy_volume
from aiida_mofal.analysis.mechanics_plots import plot_energy_volume, plot_pressure_volume, plot_volume_histogram
from aiida_mofal.analysis.pressure_volume import fit_pressure_volume

PNG = b'\x89PNG\r\n\x1a\n'


def test_energy_volume_pressure_volume_and_histogram_figures(tmp_path):
    volumes = np.linspace(90.0, 110.0, 9)
    energies = eos_energy('vinet', volumes, -10.0, 100 / EV_PER_A3_IN_GPA, 5.0, 100.0)
    fits = [fit_energy_volume(volumes, energies + 1e-5 * np.sin(volumes), form=f) for f in ('birch-murnaghan', 'vinet')]
    assert plot_energy_volume(fits, tmp_path / 'ev.png', dpi=40).read_bytes()[:8] == PNG
    pressures = eos_pressure('birch-murnaghan-2', volumes, 100.0, 4.0, 100.0) + 1e-3 * np.cos(volumes)
    pv = fit_pressure_volume(volumes, pressures, pressure_errors=np.full(9, 1e-3))
    assert (
        plot_pressure_volume(pv, tmp_path / 'pv.png', pressure_errors=np.full(9, 1e-3), dpi=40).read_bytes()[:8] == PNG
    )
    series = np.random.default_rng(0).normal(100.0, 0.5, 1000)
    assert plot_volume_histogram(series, tmp_path / 'hist.png', bulk_modulus=10.0, dpi=40).read_bytes()[:8] == PNG
