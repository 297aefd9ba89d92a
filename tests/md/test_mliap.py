"""The lammps-mliap input (aiida_mofal.md.mliap), without running it (tests/engines/test_mliap.py runs it)."""

from aiida_mofal.md.mliap import KOKKOS_GPU_ARGS, mliap_input
from aiida_mofal.md.protocol import load_md_settings


def test_mliap_input_has_the_pair_style_and_one_run_per_stage():
    settings = load_md_settings('melt_quench')
    text = mliap_input(settings, elements=['Zn', 'N', 'C', 'H'])
    assert 'pair_style mliap unified model-mliap_lammps.pt 0' in text
    assert 'pair_coeff * * Zn N C H' in text
    assert text.count('\nrun ') == len(settings['schedule'])
    assert 'fix integrate all nvt temp 300.0 1500.0 0.1' in text  # K, K, ps
    assert 'timestep 0.0005' in text
    assert ' '.join(KOKKOS_GPU_ARGS) in text
    assert text.count('unfix integrate') == len(settings['schedule'])
