"""Remote machines: computer files, their AiiDA computers and codes, and GPU requests as scheduler lines.

* :mod:`.config` -- the computer file (``mofal computer setup FILE.yaml``), validated with lines pointed at.
* :mod:`.setup` -- the AiiDA computer and its codes from a computer file; one computer's checks for the doctor.
* :mod:`.resources` -- ``gpus``/``partition``/``qos``/``account`` of a step as CalcJob options for its scheduler.

Only :mod:`.config` and :mod:`.resources` are pure; :mod:`.setup` talks to the profile and the remote.
"""

from .config import CODE_NAMES, ComputerConfig, ComputerFileError, load_computer_file, parse_computer_file
from .resources import GPU_KEYS, computer_partitions, device_for, scheduler_options

__all__ = [
    'CODE_NAMES',
    'GPU_KEYS',
    'ComputerConfig',
    'ComputerFileError',
    'computer_partitions',
    'device_for',
    'load_computer_file',
    'parse_computer_file',
    'scheduler_options',
]
