"""The study's summary table: B0 per structure from the EOS records, density, ring counts and coordination per glass
from the glass analysis (the counts are dicts; the report prints them as ``4: 4, 6: 16, 8: 32``)."""

from aiida import orm

from aiida_mofal.study.report import _cell


def test_the_summary_keeps_ring_counts_and_coordination(aiida_profile):
    from aiida_mofal.workchains.study import study_summary

    calcfunction = getattr(study_summary, '_callable', study_summary)
    eos = {'fit': {'B0_GPa': 108.5, 'B0_GPa_err': 0.16, 'V0_A3': 4306.0}, 'method': 'mofal.eos ev'}
    glass = {
        'density_g_cm3': 1.21,
        'n_atoms': 272,
        'rings': {'4': 4.0, '6': 16.0, '8': 32.0},
        'coordination': {'Zn-N': 4.0},
        'rdf': {'Zn-N': [0.0, 1.0]},
        'warnings': [],
    }
    result = calcfunction(eos_crystal=orm.Dict(eos), eos_glass_0=orm.Dict(eos), glass_glass_0=orm.Dict(glass))
    rows = {row['structure']: row for row in result.get_dict()['rows']}
    assert rows['crystal'] == {'structure': 'crystal', 'B0_GPa': 108.5, 'B0_GPa_err': 0.16, 'V0_A3': 4306.0}
    glass_0 = rows['glass_0']
    assert glass_0['B0_GPa'] == 108.5 and glass_0['density_g_cm3'] == 1.21 and glass_0['n_atoms'] == 272
    assert glass_0['rings'] == {'4': 4.0, '6': 16.0, '8': 32.0} and glass_0['coordination'] == {'Zn-N': 4.0}
    assert 'rdf' not in glass_0 and 'warnings' not in glass_0
    assert _cell(glass_0['rings']) == '4: 4, 6: 16, 8: 32' and _cell(1.21) == 1.21 and _cell(None) is None
