"""The E–V result calcfunction on a relaxation record: a minimum outside the grid is fitted and flagged."""

import numpy as np
from aiida import orm

from aiida_mofal.analysis.eos import EV_PER_A3_IN_GPA, eos_energy
from aiida_mofal.calculations.eos import compare_bulk_moduli, ev_result


def _record(volumes):
    energies = eos_energy('vinet', volumes, -14.0, 140.0 / EV_PER_A3_IN_GPA, 4.8, 47.0)
    return orm.Dict({'structures': {f'v{k}': {'volume_A3': v, 'energy_eV': e, 'converged': True, 'num_atoms': 4}
                                    for k, (v, e) in enumerate(zip(volumes, energies))}})  # fmt: skip


def test_ev_result_fits_both_forms_and_flags_a_minimum_outside_the_grid(aiida_profile):
    settings = orm.Dict({'allow_unbracketed': False})
    result = ev_result(_record(np.linspace(44.2, 49.8, 9)), settings)
    assert result['bracketed'] and abs(result['B0_GPa'] - 140.0) < 1.0 and result['num_atoms'] == 4
    flagged = ev_result(_record(np.linspace(47.5, 53.0, 9)), settings)
    assert not flagged['bracketed'] and any('outside the grid' in note for note in flagged['warnings'])
    comparison = compare_bulk_moduli(ev=result, other=orm.Dict({'B0_GPa': 141.0, 'B0_GPa_err': 2.0}))
    assert comparison['all_agree']
