from dataclasses import dataclass, field

import numpy as np

from aiida_mofal.analysis.records import unit_record


@dataclass
class _Result:
    b: float
    b_error: float
    volume: np.ndarray
    count: int
    warnings: list[str] = field(default_factory=list)


def test_unit_record_puts_each_error_after_its_value_under_the_unit_keys():
    result = _Result(b=12.0, b_error=0.5, volume=np.array([1.0, 2.0]), count=3, warnings=['short'])
    record = unit_record(result, {'b': 'B_GPa', 'volume': 'V_A3'})
    assert list(record) == ['B_GPa', 'B_GPa_err', 'V_A3', 'count', 'warnings']
    assert record == {'B_GPa': 12.0, 'B_GPa_err': 0.5, 'V_A3': [1.0, 2.0], 'count': 3, 'warnings': ['short']}
    record['warnings'].append('changed')
    assert result.warnings == ['short']


def test_unit_record_gives_only_the_named_fields_in_their_order():
    result = _Result(b=1.0, b_error=0.1, volume=np.zeros(1), count=2)
    assert list(unit_record(result, {'b': 'B_GPa'}, ('count', 'b'))) == ['count', 'B_GPa', 'B_GPa_err']
