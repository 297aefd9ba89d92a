"""Issue 18, class 4 (hung and interrupted runs): `mofal doctor` finds processes nothing will continue, and the fix."""

import re

from aiida import orm
from plumpy import ProcessState

from aiida_mofal.environment.doctor import DoctorContext, check_processes


def test_a_process_without_a_broker_task_is_reported_with_the_repair_command(aiida_profile):
    from aiida.manage import get_manager

    context = DoctorContext(profile=get_manager().get_profile())
    node = orm.WorkflowNode()
    node.set_process_state(ProcessState.WAITING)  # what a foreground run stopped mid-way leaves behind
    node.store()
    try:
        (report,) = check_processes(context).values()
        assert report['ok'] is False and report['required'] is False
        assert node.pk in report['value']['stuck']  # the built-in ZeroMQ broker of the test profile answers
        assert 'verdi process repair' in report['fix'] and 'verdi process kill ' in report['fix']
        assert str(node.pk) in re.findall(r'\d+', report['fix'].split('verdi process kill ', 1)[1])
    finally:
        node.set_process_state(ProcessState.KILLED)
    assert node.pk not in check_processes(context)['processes']['value'].get('stuck', [])
