"""CP2K input dictionaries, read and changed case-insensitively (aiida_mofal.cp2k.sections)."""

from aiida_mofal.cp2k.sections import get_keyword, merge_sections, section, set_keyword


def test_section_finds_any_spelling_and_creates_what_is_missing():
    parameters = {'force_eval': {'Dft': {'scf': {'max_scf': 30}}}}
    scf = section(parameters, 'FORCE_EVAL', 'DFT', 'SCF')
    assert scf is parameters['force_eval']['Dft']['scf']
    assert get_keyword(scf, 'MAX_SCF') == 30 and get_keyword(scf, 'EPS_SCF', 1e-7) == 1e-7
    mixing = section(parameters, 'FORCE_EVAL', 'DFT', 'SCF', 'MIXING')
    assert mixing == {} and parameters['force_eval']['Dft']['scf']['MIXING'] is mixing


def test_set_keyword_leaves_one_spelling():
    scf = {'max_scf': 30, 'Max_Scf': 40, 'EPS_SCF': 1e-6}
    set_keyword(scf, 'MAX_SCF', 120)
    assert scf == {'EPS_SCF': 1e-6, 'MAX_SCF': 120}


def test_merge_sections_is_deep_case_insensitive_and_copies():
    base = {'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 30, 'EPS_SCF': 1e-6}}}}
    extra = {'force_eval': {'dft': {'scf': {'max_scf': 5}, 'CHARGE': 1}}}
    merged = merge_sections(base, extra)
    assert merged == {'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 5, 'EPS_SCF': 1e-6}, 'CHARGE': 1}}}
    assert base['FORCE_EVAL']['DFT']['SCF']['MAX_SCF'] == 30  # not mutated
