"""Label many structures with CP2K into one ``mofal.dataset``: the service every active-learning cycle calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiida import orm
from aiida.engine import WorkChain, while_
from ase import Atoms

from aiida_mofal.calculations.labels import (
    collect_labels,
    dataset_from_structures,
    free_atoms,
    isolated_atom_energies,
    label_rows,
    pack_structures,
    structures_from_dataset,
)
from aiida_mofal.cp2k.inputs import LabelInputError, build_cp2k_parameters, check_labelling_input, isolated_atom
from aiida_mofal.data import DatasetData
from aiida_mofal.protocols import load_protocol
from aiida_mofal.remote.resources import direct_job_slots

from .cp2k_base import Cp2kBaseWorkChain

__all__ = ('LabelWorkChain', 'check_options', 'data_dir_for', 'label_settings')

FREE_FORM = ('cp2k', 'basis_set', 'calculation.options')


def label_settings(protocol: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Return the resolved labelling protocol (``xtb``, ``fast``, ``moderate``, ``precise``) with checked overrides.

    Every value that reaches CP2K's input is checked too (:func:`~aiida_mofal.cp2k.checks.check_label_settings`):
    known names, one-line strings, finite numbers in range.
    """
    from aiida_mofal.cp2k.checks import check_label_settings

    settings = load_protocol('label', protocol, overrides, free_form=FREE_FORM)
    check_label_settings(settings)
    return settings


def data_dir_for(code: orm.AbstractCode | None):
    """CP2K's data directory when the code runs on this machine (then basis sets can be checked before submission)."""
    from aiida_mofal.cp2k.executable import cp2k_data_dir

    try:
        local = code is not None and code.computer.transport_type == 'core.local'
    except Exception:  # an InstalledCode without computer, a PortableCode, ...
        local = False
    return cp2k_data_dir() if local else None


def _frames(inputs: Mapping) -> list[tuple[str, Atoms]]:
    if 'dataset' in inputs:
        return [(f'configuration {i}', atoms) for i, atoms in enumerate(inputs['dataset'].get_atoms())]
    info = inputs['structure_info'].get_dict() if 'structure_info' in inputs else {}
    frames = []
    for key in sorted(inputs.get('structures', {})):
        atoms = inputs['structures'][key].get_ase()
        atoms.info.update(info.get(key, {}))
        if atoms.info.get('config_type') == 'cluster':
            atoms.pbc = False
        frames.append((f'structure {key!r}', atoms))
    return frames


def check_options(options: Mapping[str, Any], calculation: str = 'cp2k') -> str | None:
    """Return why ``options`` are not ``metadata.options`` of the CalcJob ``calculation`` (an entry point), or None.

    Checked when the builder is made, so that a typo (``queue`` for ``queue_name``) is refused before any job.
    """
    from aiida.plugins import CalculationFactory

    known = set(CalculationFactory(calculation).spec().inputs['metadata']['options'])
    unknown = sorted(set(options) - known)
    if unknown:
        return f'unknown CalcJob option(s) {unknown}; valid: {", ".join(sorted(known))}'
    return None


def validate_inputs(inputs: Mapping, _) -> str | None:
    """Refuse, before anything runs, structures that the protocol cannot label (naming each and the fix)."""
    has_dataset, has_structures = 'dataset' in inputs, bool(inputs.get('structures'))
    if has_dataset == has_structures:
        return 'give either `dataset` (an unlabelled mofal.dataset) or `structures`, not both and not neither.'
    settings = inputs['settings'].get_dict()
    try:
        label_settings(settings.get('protocol'), {k: v for k, v in settings.items() if k != 'protocol'})
    except ValueError as error:
        return f'settings: {error}'
    if 'options' in inputs:
        error = check_options(inputs['options'].get_dict())
        if error:
            return f'options: {error}'
    data_dir = data_dir_for(inputs.get('code'))
    if data_dir is not None:  # the data files named must exist where CP2K runs (checked when it is this machine)
        from aiida_mofal.cp2k.checks import check_label_settings

        try:
            check_label_settings(settings, data_dir)
        except ValueError as error:
            return f'settings: {error}'
    for name, atoms in _frames(inputs):
        try:
            check_labelling_input(atoms, settings, name, data_dir)
        except LabelInputError as error:
            return str(error)
    return None


class LabelWorkChain(WorkChain):
    """Label structures (periodic cells and/or charged clusters) with CP2K into one data set, with E0s.

    Every structure runs under a :class:`Cp2kBaseWorkChain` (restarts for SCF failures, walltime, crashes),
    at most ``settings.calculation.max_concurrent`` at once. With ``settings.calculation.pack`` K > 1 the
    structures (and free atoms) go K at a time into ``mofal.cp2k.packed`` jobs instead (one scheduler job runs K
    CP2K single points; ``max_concurrent`` then counts those jobs); a structure that a packed job did not label
    is resubmitted alone, under the base work chain and its restarts. Converged labels are collected by the
    ``collect_labels`` calcfunction; structures that could not be labelled are left out of the data set and
    listed in the ``failed`` output, and the work chain then ends with exit code 401 (some failed).
    """

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help='The CP2K code.')
        spec.input('dataset', valid_type=DatasetData, required=False, help='Configurations to label.')
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True, required=False)
        spec.input(
            'structure_info',
            valid_type=orm.Dict,
            required=False,
            help='Per structure key: {config_type, charge, multiplicity}; default periodic when pbc, else cluster.',
        )
        spec.input('settings', valid_type=orm.Dict, help='The resolved labelling protocol (see `label_settings`).')
        spec.input(
            'isolated_atom_energies',
            valid_type=orm.Dict,
            required=False,
            help='E0s (eV) from an earlier labelling with the same settings; skips the free-atom runs.',
        )
        spec.input(
            'options',
            valid_type=orm.Dict,
            required=False,
            help='CalcJob options of every CP2K job (queue, account, resources, walltime, ...), over the protocol.',
        )
        spec.input('clean_workdir', valid_type=orm.Bool, default=lambda: orm.Bool(False))
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.has_pending)(cls.submit_batch, cls.inspect_batch),
            cls.collect,
        )
        spec.output('dataset', valid_type=DatasetData, required=False, help='The labelled configurations.')
        spec.output('isolated_atom_energies', valid_type=orm.Dict, required=False, help='E0 per element, eV.')
        spec.output('failed', valid_type=orm.Dict, required=False, help='Structures left out: which and why.')
        spec.exit_code(401, 'ERROR_SOME_FAILED', message='{count} structure(s) could not be labelled: {keys}')
        spec.exit_code(402, 'ERROR_ALL_FAILED', message='no structure could be labelled')
        spec.exit_code(403, 'ERROR_ISOLATED_ATOMS_FAILED', message='no isolated-atom energy for: {elements}')

    def setup(self):
        """Make the source data set and the queue of single points (structures first, then free atoms).

        The queue holds names and indices only: the structures are nodes (``ctx.structures``) and the ASE frames
        are read from the source data set when a batch is submitted, so the saved state holds no structure twice.
        """
        self.ctx.settings = self.inputs.settings.get_dict()
        if 'dataset' in self.inputs:
            self.ctx.source = self.inputs.dataset
        else:
            info = self.inputs.get('structure_info', orm.Dict())
            self.ctx.source = dataset_from_structures(structure_info=info, **self.inputs.structures)
        packed = int(self.ctx.settings['calculation'].get('pack', 1)) > 1  # StructureData only for single jobs
        structures = {} if packed else structures_from_dataset(self.ctx.source)
        queue = [{'key': f'frame_{index}', 'frame': index} for index in range(self.ctx.source.count)]
        self.ctx.structures = dict(structures)
        if self.ctx.settings['isolated_atoms'] and 'isolated_atom_energies' not in self.inputs:
            atoms = {symbol: None for symbol in self.ctx.source.elements} if packed else free_atoms(self.ctx.source)
            for symbol, structure in sorted(atoms.items()):
                if structure is not None:
                    self.ctx.structures[f'atom_{symbol}'] = structure
                queue.append({'key': f'atom_{symbol}', 'element': symbol})
        self.ctx.queue = queue
        self.ctx.frame_labels = {}
        self.ctx.atom_labels = {}
        self.ctx.packed_labels = {}  # packed job's name → its one labels node and what each position is
        self.ctx.failed = {}
        self.ctx.batch = []

    def has_pending(self) -> bool:
        """Whether single points are still waiting to be submitted."""
        return bool(self.ctx.queue)

    def _atoms(self, entry: Mapping) -> Atoms:
        """Return the ASE structure of a queue entry: a frame of the source (read once per process) or a free atom."""
        if 'element' in entry:
            return isolated_atom(entry['element'], self.ctx.settings)
        frames = getattr(self, '_source_frames', None)
        if frames is None:
            frames = self._source_frames = self.ctx.source.get_atoms()
        return frames[entry['frame']]

    def _job_options(self) -> dict:
        """Return the CalcJob options of every CP2K job: the protocol's resources and walltime, then ``options``."""
        calculation = self.ctx.settings['calculation']
        return {
            'resources': dict(calculation['resources']),
            'max_wallclock_seconds': int(calculation['max_wallclock_seconds']),
            **calculation.get('options', {}),
            **(self.inputs.options.get_dict() if 'options' in self.inputs else {}),
        }

    def _builder(self, structure: orm.StructureData, atoms: Atoms):
        calculation = self.ctx.settings['calculation']
        options = self._job_options()
        walltime = int(options['max_wallclock_seconds'] * calculation['walltime_fraction'])
        builder = Cp2kBaseWorkChain.get_builder()
        builder.cp2k.code = self.inputs.code
        builder.cp2k.structure = structure
        builder.cp2k.parameters = orm.Dict(build_cp2k_parameters(atoms, self.ctx.settings, walltime_seconds=walltime))
        builder.cp2k.metadata.options = {**options, 'parser_name': 'mofal.cp2k'}
        builder.max_iterations = orm.Int(calculation['max_iterations'])
        builder.clean_workdir = self.inputs.clean_workdir
        return builder

    def _make_structures(self, entries: list[dict]) -> None:
        """Make the ``StructureData`` of single jobs that have none yet (a packed job's reruns), in one calcfunction."""
        missing = [entry for entry in entries if entry['key'] not in self.ctx.structures]
        frames = sorted(entry['frame'] for entry in missing if 'frame' in entry)
        if frames:
            self.ctx.structures.update(structures_from_dataset(self.ctx.source, orm.List(frames)))
        if any('element' in entry for entry in missing):
            self.ctx.structures.update({f'atom_{key}': node for key, node in free_atoms(self.ctx.source).items()})

    def _next_jobs(self) -> list[list[dict]]:
        """Take the next ``max_concurrent`` jobs off the queue: single entries, or groups of ``pack`` entries.

        An entry marked ``single`` (a packed job could not label it) always runs alone, with restarts. On a
        ``core.direct`` computer at most as many jobs as fit its cores (``direct_job_slots``) are in flight.
        """
        calculation = self.ctx.settings['calculation']
        size, pack = max(1, int(calculation['max_concurrent'])), max(1, int(calculation.get('pack', 1)))
        computer = self.inputs.code.computer
        slots = direct_job_slots(
            computer.scheduler_type, computer.get_default_mpiprocs_per_machine(), self._job_options()['resources']
        )
        size = min(size, slots or size)  # core.direct: no more MPI processes at once than cores
        jobs, queue = [], list(self.ctx.queue)
        while queue and len(jobs) < size:
            if pack == 1 or queue[0].get('single'):
                jobs.append([queue.pop(0)])
                continue
            group = []
            while queue and len(group) < pack and not queue[0].get('single'):
                group.append(queue.pop(0))
            jobs.append(group)
        self.ctx.queue = queue
        return jobs

    def _packed_builder(self, group: list[dict]):
        from aiida_mofal.calculations.cp2k_packed import Cp2kPackedCalculation

        options = self._job_options()
        options.pop('parser_name', None)
        members = [{k: v for k, v in entry.items() if k in ('frame', 'element')} for entry in group]
        builder = Cp2kPackedCalculation.get_builder()
        builder.code = self.inputs.code
        builder.structures = pack_structures(self.ctx.source, self.inputs.settings, orm.List(members))
        builder.settings = self.inputs.settings
        builder.metadata.options = options
        return builder

    def submit_batch(self):
        """Submit the next ``max_concurrent`` jobs (single points, or packed groups of them) and wait for them."""
        self.ctx.batch = []
        jobs = self._next_jobs()
        pack = int(self.ctx.settings['calculation'].get('pack', 1))
        self._make_structures([group[0] for group in jobs if pack == 1 or group[0].get('single')])
        for group in jobs:
            if pack == 1 or group[0].get('single'):
                entry = group[0]
                builder = self._builder(self.ctx.structures[entry['key']], self._atoms(entry))
                builder.metadata.call_link_label = entry['key']
                self.to_context(**{f'cp2k_{entry["key"]}': self.submit(builder)})
                self.ctx.batch.append(entry)
                continue
            self.ctx.packs = self.ctx.get('packs', 0) + 1
            name = f'pack_{self.ctx.packs}'
            builder = self._packed_builder(group)
            builder.metadata.call_link_label = name
            self.to_context(**{f'cp2k_{name}': self.submit(builder)})
            self.ctx.batch.append({'key': name, 'members': group})
        labels = sum(len(entry.get('members', [entry])) for entry in self.ctx.batch)
        waiting = len(self.ctx.queue)  # `mofal run`'s progress bar reads this line (cli/progress.py)
        self.report(f'submitted {labels} CP2K single point(s); {waiting} waiting ({len(jobs)} scheduler job(s))')

    def inspect_batch(self):
        """Keep converged labels; record every failure with its reason (and the frame or element it is of)."""
        for entry in self.ctx.batch:
            key = entry['key']
            node = self.ctx[f'cp2k_{key}']
            if 'members' in entry:
                self._inspect_packed(node, entry['members'], key)
                continue
            if node.is_finished_ok and 'labels' in node.outputs:
                self._keep(entry, node.outputs.labels)
            else:
                state = f'exit status {node.exit_status}' if node.is_finished else node.process_state.value
                reason = node.exit_message or state
                where = {'element': entry['element']} if 'element' in entry else {'frame': entry['frame']}
                self.ctx.failed[key] = {'pk': node.pk, 'exit_status': node.exit_status, 'reason': reason, **where}
                self.report(f'{key} could not be labelled ({node.process_label}<{node.pk}>): {reason}')

    def _keep(self, entry: Mapping, labels: orm.ArrayData) -> None:
        if 'element' in entry:
            self.ctx.atom_labels[entry['element']] = labels
        else:
            self.ctx.frame_labels[entry['key']] = {'labels': labels, 'frame': entry['frame']}

    def _inspect_packed(self, node: orm.CalcJobNode, members: list[dict], key: str) -> None:
        """Keep each label of a packed job; put each structure it did not label back in the queue, to run alone."""
        made = label_rows(node.outputs.labels) if 'labels' in node.outputs else {}
        failed = node.outputs.failed.get_dict() if 'failed' in node.outputs else {}
        retry, reasons = [], []
        for index, entry in enumerate(members):
            if index in made:
                continue
            reasons.append(failed.get(str(index)) or node.exit_message or f'exit status {node.exit_status}')
            retry.append(entry['key'])
            self.ctx.queue.append({**entry, 'single': True})
        if made:  # position → source frame / element, None where the position was not labelled
            self.ctx.packed_labels[key] = {
                'labels': node.outputs.labels,
                'frames': [entry.get('frame') if i in made else None for i, entry in enumerate(members)],
                'elements': [entry.get('element') if i in made else None for i, entry in enumerate(members)],
            }
        if retry:
            self.report(
                f'packed job {node.process_label}<{node.pk}> left {len(retry)} of {len(members)} unlabelled '
                f'({", ".join(retry)}): resubmitting each alone; first reason: {reasons[0]}'
            )

    def collect(self):
        """Build the labelled data set (calcfunction) and report what was left out."""
        if 'isolated_atom_energies' in self.inputs:
            e0s = self.inputs.isolated_atom_energies
        elif self.ctx.atom_labels or any(any(p['elements']) for p in self.ctx.packed_labels.values()):
            packs = {key: p for key, p in self.ctx.packed_labels.items() if any(p['elements'])}
            elements = {'elements': orm.Dict({key: p['elements'] for key, p in packs.items()})} if packs else {}
            packed = {key: p['labels'] for key, p in packs.items()}
            e0s = isolated_atom_energies(**elements, **self.ctx.atom_labels, **packed)
        else:
            e0s = orm.Dict({}).store()
        self.out('isolated_atom_energies', e0s)
        if self.ctx.failed:
            self.out('failed', orm.Dict(self.ctx.failed).store())
        frames = {key: entry['frame'] for key, entry in self.ctx.frame_labels.items()}
        labels = {key: entry['labels'] for key, entry in self.ctx.frame_labels.items()}
        for key, pack in self.ctx.packed_labels.items():
            if any(index is not None for index in pack['frames']):
                frames[key], labels[key] = pack['frames'], pack['labels']
        if not labels:
            return self.exit_codes.ERROR_ALL_FAILED
        dataset = collect_labels(
            source=self.ctx.source,
            settings=self.inputs.settings,
            isolated_atom_energies=e0s,
            frames=orm.Dict(frames),
            **labels,
        )
        self.out('dataset', dataset)
        self.report(f'labelled {dataset.count} of {self.ctx.source.count} configurations into {dataset.pk}')
        missing = sorted(set(dataset.elements) - set(e0s.get_dict())) if self.ctx.settings['isolated_atoms'] else []
        if missing:
            return self.exit_codes.ERROR_ISOLATED_ATOMS_FAILED.format(elements=', '.join(missing))
        failed_frames = sorted(
            (key for key, failure in self.ctx.failed.items() if 'frame' in failure),
            key=lambda key: self.ctx.failed[key]['frame'],
        )
        if failed_frames:
            return self.exit_codes.ERROR_SOME_FAILED.format(count=len(failed_frames), keys=', '.join(failed_frames))
        return None

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode,
        structures: DatasetData | Sequence[Atoms] | Mapping[str, orm.StructureData] | Iterable[orm.StructureData],
        protocol: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        structure_info: Mapping[str, Mapping] | None = None,
        isolated_atom_energies: Mapping[str, float] | orm.Dict | None = None,
        clean_workdir: bool = False,
        options: Mapping[str, Any] | None = None,
    ):
        """Return a builder for labelling ``structures`` with ``protocol`` (default ``moderate``).

        :param structures: an unlabelled ``mofal.dataset``; or ASE ``Atoms`` whose ``info`` holds ``config_type``,
            ``charge`` and ``multiplicity`` (they become one unlabelled data set); or ``StructureData`` (a mapping
            key → node, or a sequence keyed ``s0``, ``s1``, ...) with ``structure_info`` per key.
        :param overrides: validated against the protocol: an unknown key raises; ``cp2k`` (raw CP2K sections)
            and ``basis_set`` (per element) are free-form.
        :param options: CalcJob options of every CP2K job, over the protocol's ``calculation`` settings, as the
            train and MD builders take them: ``{'queue_name': 'cpu', 'account': 'proj', 'resources': {...},
            'max_wallclock_seconds': 7200, 'custom_scheduler_commands': '#SBATCH --qos=short'}``. CP2K's own
            WALLTIME follows ``max_wallclock_seconds``.
        :raises ValueError: for an unknown protocol, override or option, or a structure the protocol cannot label.
        """
        settings = label_settings(protocol, overrides)
        builder = cls.get_builder()
        builder.code = code
        builder.settings = orm.Dict(settings)
        builder.clean_workdir = orm.Bool(clean_workdir)
        if isinstance(structures, DatasetData):
            builder.dataset = structures
        else:
            items = list(structures.items()) if isinstance(structures, Mapping) else list(enumerate(structures))
            if items and all(isinstance(value, Atoms) for _, value in items):
                builder.dataset = DatasetData([atoms for _, atoms in items])
            else:
                builder.structures = {key if isinstance(key, str) else f's{key}': node for key, node in items}
                builder.structure_info = orm.Dict(dict(structure_info or {}))
        if isolated_atom_energies is not None:
            if not isinstance(isolated_atom_energies, orm.Dict):
                isolated_atom_energies = orm.Dict(dict(isolated_atom_energies))
            builder.isolated_atom_energies = isolated_atom_energies
        if options:
            builder.options = orm.Dict(dict(options))
        error = validate_inputs(builder._inputs(prune=True), None)
        if error:
            raise LabelInputError(error)
        return builder
