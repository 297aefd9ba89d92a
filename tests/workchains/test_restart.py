"""``serial_options``: the default CalcJob options every MD, relaxation and EOS job starts from."""

from aiida import orm

from aiida_mofal.workchains.restart import serial_options

SERIAL = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}


def test_serial_by_default_and_given_options_win_without_being_changed(aiida_profile):
    assert serial_options(None) == {'resources': SERIAL}
    given = {'resources': {'num_machines': 2, 'num_mpiprocs_per_machine': 4}, 'max_wallclock_seconds': 60}
    options = serial_options(given)
    assert options == given and options['resources'] is not given['resources']  # a copy, deep
    options['resources']['num_machines'] = 8
    assert given['resources']['num_machines'] == 2
    assert serial_options(orm.Dict({'withmpi': False})) == {'resources': SERIAL, 'withmpi': False}  # an input node
