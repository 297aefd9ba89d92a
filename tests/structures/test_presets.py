"""The cluster paper's UiO-66 cells: counts, characterisations, and the atom-count rule behind S_sup."""

import numpy as np
import pytest

from aiida_mofal.structures.presets import PRESETS, build_uio66_counts, build_uio66_preset

PRISTINE_4 = 29_184  # atoms of the pristine 4x4x4 cell


def _atoms_after(bricks, linkers, pristine=PRISTINE_4):
    """A brick with its carboxylates is 54 atoms, a ring 10; every missing ring leaves an H on each surviving end."""
    return pristine - 66 * bricks - 8 * linkers


def test_the_paper_characterisations_follow_from_the_preset_counts():
    sup, star = PRESETS['S_sup'], PRESETS['S_sup_star']
    assert _atoms_after(sup.bricks, sup.linkers) == 22_052  # the paper's S_sup
    characterisation = (sup.hf / (6 * (256 - sup.bricks)), sup.bricks / 256, sup.linkers / 1536)
    assert np.round(characterisation, 2).tolist() == [0.21, 0.13, 0.40]
    characterisation = (star.hf / (6 * (256 - star.bricks)), star.bricks / 256, star.linkers / 1536)
    assert np.round(characterisation, 2).tolist() == [0.10, 0.04, 0.17]


def test_counts_builder_removes_exactly_what_it_is_asked_in_a_2x2x2_cell():
    atoms = build_uio66_counts(2, bricks=3, linkers=60, hf=20, seed=5)  # 32 bricks, 192 linkers, 3648 atoms
    assert atoms.info['n_bricks_removed'] == 3 and atoms.info['n_linkers_removed'] == 60
    assert atoms.info['n_bricks_dropped'] == 0 and atoms.info['n_hf'] == 20
    assert len(atoms) == _atoms_after(3, 60, pristine=8 * 456)
    assert atoms.info['c_brick'] == pytest.approx(3 / 32) and atoms.info['c_linker'] == pytest.approx(60 / 192)
    one, again = (build_uio66_counts(1, bricks=0, linkers=5, hf=3, seed=5) for _ in range(2))
    assert np.array_equal(again.positions, one.positions) and len(one) == 456 - 8 * 5
    with pytest.raises(ValueError, match='already removes'):
        build_uio66_counts(1, bricks=1, linkers=3, hf=0)  # a brick takes 12 linkers with it
    with pytest.raises(ValueError, match='has 4 bricks and 24 linkers'):
        build_uio66_counts(1, bricks=5, linkers=0, hf=0)


@pytest.mark.parametrize(
    ('name', 'atoms', 'c_values'),
    [('S_ld', 448, (0.0, 0.0, 1 / 24)), ('S_hf', 456, (1 / 24, 0.0, 0.0)), ('S_reo', 294, (0.0, 0.25, 0.5))],
)
def test_unit_cell_presets_hold_one_defect_each(name, atoms, c_values):
    cell = build_uio66_preset(name, seed=1)
    assert len(cell) == atoms and cell.info['preset'] == name
    assert [cell.info[k] for k in ('c_hf', 'c_brick', 'c_linker')] == pytest.approx(c_values)


def test_unknown_preset_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown UiO-66 preset 'S_xx'; choose one of \['S_hf'"):
        build_uio66_preset('S_xx')
