"""The ``mofal`` command: the same code as the library, in ``verdi``'s style."""

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import options, types


@click.group('mofal', cls=VerdiCommandGroup, context_settings={'help_option_names': ['-h', '--help']})
@options.PROFILE(type=types.ProfileParamType(load_profile=True), expose_value=False)
def cmd_root():
    """Active learning of MACE potentials for MOFs with AiiDA."""


from . import (  # noqa: E402, F401
    cmd_analyse,
    cmd_campaign,
    cmd_computer,
    cmd_dataset,
    cmd_eos,
    cmd_evaluate,
    cmd_label,
    cmd_md,
    cmd_melt_quench,
    cmd_provenance,
    cmd_rerun,
    cmd_select,
    cmd_setup,
    cmd_structures,
    cmd_study,
    cmd_train,
    utils,
)
