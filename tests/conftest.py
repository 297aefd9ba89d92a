"""Shared fixtures: the test profile, localhost and its codes, the xTB data set, one trained tiny MACE model per run,
and the builders of fake finished CalcJobNodes and of work-chain instances for parser and handler tests.

Expensive fixtures are session-wide (built once per test run) and never changed by a test: the profile is never
wiped (``aiida_profile_clean`` would delete the session's codes and data sets under later tests).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']

ROOT = Path(__file__).resolve().parent.parent
XTB = ROOT / 'tests' / 'data_files' / 'xtb'
XTB_NAME = 'organics_gfn1xtb'
PARSER_FIXTURES = ROOT / 'tests' / 'parsers' / 'fixtures'


@pytest.fixture(scope='session')
def aiida_profile(aiida_config, aiida_profile_factory):
    """The embedded default of `mofal setup`: SQLite storage and the built-in ZeroMQ broker."""
    with aiida_profile_factory(aiida_config, broker_backend='core.zeromq') as profile:
        yield profile


DAEMON_STOP_SECONDS = 120


@pytest.fixture(scope='session')
def daemon_client(aiida_profile):
    """aiida-core's session fixture (``submit_and_await`` uses it), but the final stop waits up to 120 s.

    aiida-core's stops with the client's default timeout; with two busy xdist workers circus answered ``quit``
    too late once, and the session ended in a teardown error (``Connection to the daemon timed out``) after every
    test had passed.
    """
    from aiida.engine.daemon import get_daemon_client
    from aiida.engine.daemon.client import DaemonNotRunningException, DaemonTimeoutException

    client = get_daemon_client(aiida_profile.name)
    yield client
    try:
        client.stop_daemon(wait=True, timeout=DAEMON_STOP_SECONDS)
    except DaemonNotRunningException:
        return
    client._await_condition(
        lambda: not client.is_daemon_running,
        DaemonTimeoutException('The daemon failed to stop.'),
        timeout=DAEMON_STOP_SECONDS,
    )


@pytest.fixture(scope='session')
def localhost(aiida_profile, tmp_path_factory):
    """The ``localhost`` computer exactly as `mofal setup` makes it (two MPI processes by default)."""
    from aiida_mofal.environment.localhost import ensure_localhost

    return ensure_localhost(tmp_path_factory.mktemp('scratch'), mpiprocs=2)


@pytest.fixture(scope='session')
def mofal_codes(localhost):
    """The ``cp2k``, ``lammps`` and ``python-mace`` codes on localhost exactly as `mofal setup` makes them."""
    from aiida_mofal.environment.localhost import ensure_codes

    return ensure_codes(localhost)


@pytest.fixture(scope='session')
def python_code(mofal_codes):
    """``python-mace@localhost``: the Python that runs the MACE and MD driver scripts."""
    return mofal_codes['python-mace']


# -- data ---------------------------------------------------------------------------------------------------


def xtb_meta() -> dict:
    """Level of theory and isolated-atom energies of the stored CP2K GFN1-xTB set (tests/data_files/xtb)."""
    return json.loads((XTB / f'{XTB_NAME}.json').read_text())


@pytest.fixture(scope='session')
def xtb_dataset(aiida_profile):
    """All 72 labelled frames of tests/data_files/xtb with their E0s, stored."""
    from aiida_mofal.data import DatasetData

    meta = xtb_meta()
    return DatasetData.from_file(
        XTB / f'{XTB_NAME}.extxyz',
        level_of_theory=meta['level_of_theory'],
        isolated_atom_energies=meta['isolated_atom_energies'],
    ).store()


@pytest.fixture(scope='session')
def xtb_split(xtb_dataset):
    """(train, validation) from the seeded split calcfunction: 58 / 14 frames."""
    from aiida import orm

    from aiida_mofal.calculations.mace_train import split_dataset

    result = split_dataset(xtb_dataset, orm.Float(0.2), orm.Int(7))
    return result['train'], result['validation']


# -- models -------------------------------------------------------------------------------------------------


@pytest.fixture(scope='session')
def tiny_mace_model_file(tmp_path_factory) -> Path:
    """A real (untrained, randomly initialised) MACE model for H and O, saved as mace_run_train saves models."""
    import mace  # noqa: F401  (first: it sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, which e3nn's import needs)
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(0)
    model = modules.ScaleShiftMACE(
        r_max=4.5,
        num_bessel=4,
        num_polynomial_cutoff=5,
        max_ell=1,
        interaction_cls=modules.interaction_classes['RealAgnosticResidualInteractionBlock'],
        interaction_cls_first=modules.interaction_classes['RealAgnosticResidualInteractionBlock'],
        num_interactions=2,
        num_elements=2,
        hidden_irreps=o3.Irreps('8x0e'),
        MLP_irreps=o3.Irreps('8x0e'),
        atomic_energies=np.array([-13.6, -432.0]),
        avg_num_neighbors=2.0,
        atomic_numbers=[1, 8],
        correlation=2,
        gate=torch.nn.functional.silu,
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )
    path = tmp_path_factory.mktemp('model') / 'tiny.model'
    torch.save(model.to(torch.float64), path)
    return path


@pytest.fixture(scope='session')
def uio66_mace_model_file(tmp_path_factory) -> Path:
    """A random MACE model for H, C, N, O, Zr with 16x0e+16x1o hidden features (two layers), built once per run."""
    from tests.mlp.mace_models import build_mace_model

    return build_mace_model(tmp_path_factory.mktemp('uio66-model') / 'uio66.model')


@dataclass(frozen=True)
class SSup:
    """The paper's defective UiO-66 supercell S_sup (22,000 atoms) and its bond graph, built once per run."""

    atoms: object
    graph: object


@pytest.fixture(scope='session')
def s_sup() -> SSup:
    """``build_uio66(4, linker=0.2, hf=0.2, brick=0.1, seed=0)`` and its bond graph; tests must not change them."""
    from aiida_mofal.structures.bonds import bond_graph
    from aiida_mofal.structures.uio66 import build_uio66

    atoms = build_uio66(4, linker=0.2, hf=0.2, brick=0.1, seed=0)
    return SSup(atoms, bond_graph(atoms))


@dataclass(frozen=True)
class TrainedModel:
    """The outcome of the session's one real training: the work chain node, its model, and the sets it used."""

    workchain: object
    model: object
    train: object
    validation: object


@pytest.fixture(scope='session')
def trained_tiny_model(python_code, xtb_split) -> TrainedModel:
    """One real MACE training per test run (``mofal.train``, protocol ``tiny``, seed 5, CPU) on the xTB split.

    About a minute on this machine; every test that needs a trained model uses this one and must not change it.
    """
    from aiida import engine

    from aiida_mofal.workchains.train import TrainWorkChain

    train, validation = xtb_split
    builder = TrainWorkChain.get_builder_from_protocol(python_code, train, validation, protocol='tiny', seed=5)
    _, node = engine.run_get_node(builder)
    assert node.is_finished_ok, f'the shared tiny training failed: {node.exit_status} {node.exit_message}'
    return TrainedModel(node, node.outputs.model, train, validation)


# -- fake finished calculations and work-chain instances (parser and handler tests) -------------------------


def _flat_inputs(inputs: Mapping, prefix: str = ''):
    """Yield (link label, node) for a nested inputs dict; namespaces join with ``__`` as AiiDA's links do."""
    for key, value in inputs.items():
        if isinstance(value, Mapping):
            yield from _flat_inputs(value, f'{prefix}{key}__')
        else:
            yield f'{prefix}{key}', value


@pytest.fixture
def generate_calc_job_node(localhost, tmp_path):
    """Return a function that makes a stored, finished ``CalcJobNode`` as a real run of ``entry_point`` leaves it.

    ``generate_calc_job_node(entry_point, inputs=None, exit_status=None, retrieved=None, outputs=None,
    options=None)``:

    * ``inputs``: ``{label: node}`` (nested dicts for namespaces), linked as the calculation's inputs;
    * ``exit_status``: an ``ExitCode`` or an int; the node is then FINISHED with it (a failed child);
    * ``retrieved``: a folder (e.g. ``tests/parsers/fixtures/cp2k/walltime``) or ``{filename: text or bytes}``,
      stored as the ``retrieved`` FolderData;
    * ``outputs``: more ``{label: node}`` outputs; a ``remote_folder`` (RemoteData on localhost, in a temporary
      directory) is always attached;
    * ``options``: CalcJob options set on the node (e.g. ``{'output_filename': 'aiida.out'}``).
    """
    from aiida import orm
    from aiida.common import LinkType
    from aiida.plugins import CalculationFactory
    from aiida.plugins.entry_point import format_entry_point_string
    from plumpy import ProcessState

    def _generate(entry_point, inputs=None, exit_status=None, retrieved=None, outputs=None, options=None):
        node = orm.CalcJobNode(
            computer=localhost, process_type=format_entry_point_string('aiida.calculations', entry_point)
        )
        node.set_process_label(CalculationFactory(entry_point).__name__)
        node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
        node.set_option('max_wallclock_seconds', 3600)
        for key, value in (options or {}).items():
            node.set_option(key, value)
        for label, value in _flat_inputs(inputs or {}):
            node.base.links.add_incoming(value.store(), link_type=LinkType.INPUT_CALC, link_label=label)
        node.store()

        remote = orm.RemoteData(computer=localhost, remote_path=str(tmp_path))
        created = {'remote_folder': remote, **(outputs or {})}
        if retrieved is not None:
            folder = orm.FolderData()
            if isinstance(retrieved, Mapping):
                for name, content in retrieved.items():
                    data = content.encode() if isinstance(content, str) else content
                    folder.base.repository.put_object_from_bytes(data, name)
            else:
                folder.base.repository.put_object_from_tree(str(retrieved))
            created['retrieved'] = folder
        for label, value in created.items():
            value.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
            value.store()
        if exit_status is not None:
            node.set_process_state(ProcessState.FINISHED)
            node.set_exit_status(getattr(exit_status, 'status', exit_status))
        return node

    return _generate


@pytest.fixture
def generate_workchain():
    """Return a function that instantiates a work chain (without running it) for handler tests.

    ``generate_workchain(entry_point_or_class, inputs, child=None)``: the process is built from ``inputs`` (as a
    launch would validate them) and ``setup()`` is run; with ``child`` (a node from ``generate_calc_job_node``)
    the process looks as if it ran that child once, so that ``process.handle_<what>(child)`` and
    ``process.inspect_process()`` can be called directly.
    """
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager
    from aiida.plugins import WorkflowFactory

    def _generate(entry_point, inputs, child=None):
        process_class = WorkflowFactory(entry_point) if isinstance(entry_point, str) else entry_point
        process = instantiate_process(get_manager().get_runner(), process_class, **inputs)
        process.setup()
        if child is not None:
            process.ctx.iteration = 1
            process.ctx.children = [child]
        return process

    return _generate


# -- a real SLURM over SSH (.ci/start-slurm.sh) --------------------------------------------------------------


@pytest.fixture(scope='session')
def slurm_codes(aiida_profile) -> dict:
    """``cp2k``, ``lammps``, ``python-mace`` @ ``slurm-localhost``: the project's SLURM, reached over SSH.

    Starts it with ``.ci/start-slurm.sh`` (idempotent; installs slurm-wlm, munge, openssh-server the first time)
    and sets the computer up from ``examples/computers/slurm-localhost.yaml``. Skipped, with the reason, where
    it cannot start (not root, no apt); ``MOFAL_REQUIRE_SLURM=1`` turns that skip into a failure (CI).
    """
    import os
    import subprocess
    import sys

    from aiida_mofal.remote.config import load_computer_file
    from aiida_mofal.remote.setup import setup_computer

    def cannot(reason: str):
        if os.environ.get('MOFAL_REQUIRE_SLURM') == '1':
            pytest.fail(f'SLURM is required here but: {reason}')
        pytest.skip(f'no SLURM over SSH: {reason}')

    if os.geteuid() != 0:
        cannot('.ci/start-slurm.sh needs root (it starts slurmctld, slurmd, munged and sshd)')
    try:
        started = subprocess.run(
            ['bash', str(ROOT / '.ci' / 'start-slurm.sh')], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        cannot('.ci/start-slurm.sh did not finish in 15 minutes')
    if started.returncode != 0:
        cannot(f'.ci/start-slurm.sh failed: {(started.stderr or started.stdout).strip()[-500:]}')
    previous = os.environ.get('VIRTUAL_ENV')
    os.environ['VIRTUAL_ENV'] = sys.prefix  # the example's {local:VIRTUAL_ENV}: this Python's environment
    try:
        config = load_computer_file(ROOT / 'examples' / 'computers' / 'slurm-localhost.yaml').config
    finally:
        if previous is None:
            os.environ.pop('VIRTUAL_ENV')
        else:
            os.environ['VIRTUAL_ENV'] = previous
    summary = setup_computer(config)
    from aiida import orm

    return {name: orm.load_code(label) for name, label in summary['codes'].items()}


# -- parallel runs (pytest-xdist: ``make test`` runs ``pytest -n 2 --dist loadfile``) ----------------------------

SHARED_MODEL_GROUP = 'trained_tiny_model'
SLURM_GROUP = 'slurm'


@functools.cache
def xdist_group_of_file(path: str) -> str:
    """The worker group of a test file: the file itself, or the group of files that must share one worker.

    The files that use the session's one trained model form one group, so the model is trained once; the SLURM
    tests form one group, since they share the one SLURM of ``.ci/start-slurm.sh``. Read from the file's text:
    xdist's scheduler runs before any test is collected, and its ``xdist_group`` marks do not reach it under
    pytest 9 (xdist 3.8 appends the group to ``item._nodeid``, which pytest 9 no longer reads).
    """
    text = (ROOT / path).read_text(errors='replace')
    if 'pytest.mark.slurm' in text:
        return SLURM_GROUP
    if SHARED_MODEL_GROUP in text:
        return SHARED_MODEL_GROUP
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, with the files of one group (above) on one worker; other modes stay xdist's own."""
    if config.getvalue('dist') != 'loadfile':
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileGroupScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of_file(nodeid.split('::', 1)[0])

    return FileGroupScheduling(config, log)
