"""Issue 18, classes 3 and 7: no user string reaches a CP2K input unchecked; every element H-Lr can be labelled.

Each case is refused by ``label_settings`` (what ``mofal label``, ``mofal run`` and every builder call), so nothing is
submitted; the message names the key.
"""

import pytest
from ase import Atoms
from ase.data import chemical_symbols

from aiida_mofal.cp2k.checks import check_label_settings
from aiida_mofal.cp2k.elements import GROUND_STATE_MULTIPLICITY, atom_multiplicity
from aiida_mofal.cp2k.inputs import LabelInputError, check_labelling_input, isolated_atom
from aiida_mofal.workchains.label import label_settings


@pytest.mark.parametrize(
    ('protocol', 'overrides', 'message'),
    [
        ('fast', {'xc': 'PBE\n&END XC'}, "settings.xc: 'PBE\\n&END XC' is not a CP2K XC_FUNCTIONAL"),
        ('fast', {'xc': 'revPBE0-typo'}, 'is not a CP2K XC_FUNCTIONAL shortcut'),
        ('fast', {'dispersion': 'D3 @INCLUDE x'}, 'settings.dispersion'),
        ('fast', {'basis_set_files': ['../../home/me/BASIS']}, 'settings.basis_set_files[0]'),
        ('fast', {'potential_file': 'GTH_POTENTIALS\n@SET A 1'}, 'settings.potential_file'),
        ('fast', {'pseudopotential': 'GTH-PBE BAD'}, 'settings.pseudopotential'),
        ('fast', {'basis_set': {'Xx': 'DZVP'}}, "'Xx' is neither an element symbol"),
        ('fast', {'basis_set': {'O': 'DZVP\nX'}}, 'settings.basis_set.O'),
        ('xtb', {'cp2k': {'GLOBAL': {'PROJECT': 'p\n@INCLUDE /etc/hosts'}}}, 'contains a line break'),
        ('xtb', {'cp2k': {'FORCE_EVAL': {'DFT': {'CHARGE': '0 &'}}}}, '"@" or "&"'),
        ('xtb', {'cp2k': {'GLOBAL': {'BAD KEY': 1}}}, "key 'BAD KEY' is not a CP2K keyword"),
        ('xtb', {'cluster': {'vacuum': 1e308}}, 'settings.cluster.vacuum: 1e+308'),
        ('xtb', {'cluster': {'poisson_solver': 'MT;rm'}}, 'settings.cluster.poisson_solver'),
        ('xtb', {'scf': {'max_scf': 2.5}}, 'must be an integer'),
        ('xtb', {'calculation': {'farm': 'yes'}}, 'settings.calculation.farm: '),
        ('xtb', {'calculation': {'farm_groups': 0}}, 'settings.calculation.farm_groups: 0'),
        ('fast', {'cutoff': float('nan')}, 'settings.cutoff: nan is not a finite number'),
    ],
)
def test_engine_input_injection_is_refused(protocol, overrides, message):
    with pytest.raises(ValueError) as error:
        label_settings(protocol, overrides)
    assert message in str(error.value)


def test_protocols_as_shipped_pass_and_data_files_must_exist(tmp_path):
    for protocol in ('xtb', 'fast', 'moderate', 'precise'):
        label_settings(protocol)
    (tmp_path / 'BASIS_MOLOPT').write_text('')
    with pytest.raises(ValueError, match="no file 'BASIS_MOLOPT_UZH' in CP2K's data directory"):
        check_label_settings(label_settings('fast'), tmp_path)


def test_every_element_to_lr_has_a_multiplicity_of_the_right_parity():
    """Issue 18, class 7: La-Lu, Po-Rn and the actinides were missing, so a Ce MOF ended in a traceback."""
    for z in range(1, 104):
        symbol = chemical_symbols[z]
        multiplicity = atom_multiplicity(symbol)
        assert multiplicity % 2 != z % 2, symbol  # an odd electron count needs an even multiplicity
    assert len(GROUND_STATE_MULTIPLICITY) == 103
    assert (atom_multiplicity('Ce'), atom_multiplicity('Gd'), atom_multiplicity('Eu')) == (1, 9, 8)
    settings = label_settings('xtb')
    for symbol in ('La', 'Nd', 'Lu', 'Po', 'Rn'):
        check_labelling_input(isolated_atom(symbol, settings), settings, f'free {symbol}')


def test_what_cp2k_cannot_do_is_refused_before_submission():
    settings = label_settings('xtb')
    with pytest.raises(LabelInputError, match='GFN1-xTB has no parameters for Th'):
        check_labelling_input(Atoms('ThO2', positions=[[0, 0, 0], [1.9, 0, 0], [-1.9, 0, 0]]), settings, 'thoria')
    with pytest.raises(LabelInputError, match='no ground-state multiplicity known'):
        dubnium = Atoms('Db', positions=[[0, 0, 0]])
        dubnium.info['multiplicity'] = 2
        check_labelling_input(dubnium, settings, 'dubnium')


@pytest.mark.parametrize(
    ('atoms', 'info', 'message'),
    [
        (Atoms('H2', positions=[[0, 0, 0], [0.74, 0, 0]]), {'charge': -600, 'multiplicity': 1}, 'is not chemistry'),
        (Atoms([1] * 5002, positions=[[1.0 * i, 0, 0] for i in range(5002)]), {}, 'beyond what one xtb single'),
    ],
)
def test_absurd_labels_are_refused(atoms, info, message):
    atoms.info.update(info)
    with pytest.raises(LabelInputError, match=message):
        check_labelling_input(atoms, label_settings('xtb'), 'bad')
