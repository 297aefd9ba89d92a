"""The doctor's checks are one function each and the list can grow (``mofal doctor`` itself: tests/test_cli.py)."""

from aiida_mofal.environment import doctor as doctor_module
from aiida_mofal.environment.doctor import CHECKS, DoctorContext, check, check_numpy, check_python, doctor


def test_every_check_is_a_function_in_order():
    names = [function.__name__ for function in CHECKS]
    assert names[:2] == ['check_python', 'check_profile'] and len(set(names)) == len(names)
    assert all(function.__doc__ for function in CHECKS)


def test_a_new_check_extends_the_report_and_its_verdict():
    def check_scratch(context):
        return {'scratch': check(False, '/nonexistent', 'mount it', required=context.profile_name == 'strict')}

    relaxed = doctor('relaxed', checks=[check_python, check_numpy, check_scratch])
    assert list(relaxed['checks']) == ['python', 'numpy', 'scratch']
    assert relaxed['ok'] is True  # a failed check that is not required does not fail the report
    assert relaxed['checks']['scratch'] == {'ok': False, 'value': '/nonexistent', 'fix': 'mount it', 'required': False}
    strict = doctor('strict', checks=[check_python, check_scratch])
    assert strict['ok'] is False


def test_profile_checks_skip_without_a_profile():
    context = DoctorContext()
    for function in (doctor_module.check_broker, doctor_module.check_daemon, doctor_module.check_codes):
        assert function(context) == {}
