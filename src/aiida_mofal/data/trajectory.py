"""``mofal.trajectory``: the frames and thermodynamics of one MD run in one node.

One node per run, not one ``StructureData`` per frame (database growth, aiida-core #5025): the arrays live in the
node's repository as two compressed ``.npz`` files; the attributes hold only what people query (numbers of frames
and atoms, elements, engine, ensemble, timestep, steps done, and means and spreads of temperature, pressure and
volume).

Units: positions and cells Å, energies eV, forces eV/Å, stresses eV/Å^3 (Voigt ``xx yy zz yz xz xy``, ASE's sign,
potential part only, as ``REF_stress`` in data sets), velocities Å/fs, times fs; thermodynamics K, GPa, Å^3, eV.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from aiida import orm
from ase import Atoms, units

from aiida_mofal.mlp.configurations import ENERGY_KEY, FORCES_KEY, STRESS_KEY, element_symbols, write_extxyz

from .attributes import stored_attribute

__all__ = ['FRAME_ARRAYS', 'THERMO_ARRAYS', 'MdTrajectoryData']

FRAME_ARRAYS = ('steps', 'times', 'positions', 'cells', 'energies', 'forces', 'stresses', 'velocities')
"""Per-frame arrays, first axis = frame."""

THERMO_ARRAYS = (
    'step',
    'time',
    'temperature',
    'pressure',
    'volume',
    'potential_energy',
    'kinetic_energy',
    'conserved_energy',
    'target_temperature',
    'target_pressure',
)
"""Thermodynamic time series (one value per ``thermo_every`` steps)."""


def _load_npz(content: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(content), allow_pickle=False) as handle:
        return {key: np.array(handle[key]) for key in handle.files}


def _dump_npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
    return buffer.getvalue()


class MdTrajectoryData(orm.Data):
    """Frames (positions, cells, energies, forces, stresses, velocities) and thermodynamics of one MD run.

    Build it from arrays (``MdTrajectoryData(frames, thermo, numbers=..., pbc=..., engine=..., timestep=...)``) or
    from the files the remote script writes (:meth:`from_files`). Read it with :meth:`get_atoms`, iteration,
    :meth:`get_array`, :meth:`get_thermo`, and :meth:`export` (extxyz with MACE's ``REF_*`` keys).
    """

    FRAMES_FILENAME = 'trajectory.npz'
    THERMO_FILENAME = 'thermo.npz'

    def __init__(
        self,
        frames: Mapping[str, np.ndarray],
        thermo: Mapping[str, np.ndarray] | None = None,
        *,
        numbers: np.ndarray,
        pbc: np.ndarray = (True, True, True),
        engine: str = '',
        timestep: float | None = None,
        ensemble: str = '',
        extra_attributes: Mapping | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
        frames = {key: np.asarray(frames[key]) for key in FRAME_ARRAYS if key in frames}
        missing = [key for key in ('positions', 'cells') if key not in frames]
        if missing:
            raise ValueError(f'a trajectory needs the frame arrays {missing}')
        num_frames, num_atoms = frames['positions'].shape[:2] if frames['positions'].ndim == 3 else (0, len(numbers))
        expected = {
            'steps': (num_frames,),
            'times': (num_frames,),
            'positions': (num_frames, num_atoms, 3),
            'cells': (num_frames, 3, 3),
            'energies': (num_frames,),
            'forces': (num_frames, num_atoms, 3),
            'stresses': (num_frames, 6),
            'velocities': (num_frames, num_atoms, 3),
        }
        if num_atoms != len(numbers):
            raise ValueError(f'positions have {num_atoms} atoms but numbers has {len(numbers)}')
        for key, value in frames.items():
            if value.shape != expected[key]:
                raise ValueError(f'frame array {key!r} has shape {value.shape}, expected {expected[key]}')
        thermo = {key: np.asarray(value, dtype=float) for key, value in (thermo or {}).items()}
        lengths = {len(value) for value in thermo.values()}
        if len(lengths) > 1:
            raise ValueError(f'thermo arrays have different lengths {sorted(lengths)}')
        self.base.repository.put_object_from_bytes(
            _dump_npz({**frames, 'numbers': numbers, 'pbc': np.asarray(pbc, dtype=bool)}), self.FRAMES_FILENAME
        )
        self.base.repository.put_object_from_bytes(_dump_npz(thermo), self.THERMO_FILENAME)
        attributes = {
            'num_frames': int(num_frames),
            'num_atoms': int(num_atoms),
            'elements': element_symbols(numbers),
            'arrays': sorted(frames),
            'thermo_arrays': sorted(thermo),
            'engine': engine,
            'ensemble': ensemble,
            'timestep': None if timestep is None else float(timestep),
            'last_step': int(frames['steps'][-1]) if 'steps' in frames and num_frames else 0,
            'last_time': float(frames['times'][-1]) if 'times' in frames and num_frames else 0.0,
            'summary': self._summary(thermo),
            **dict(extra_attributes or {}),
        }
        self.base.attributes.set_many(attributes)

    @staticmethod
    def _summary(thermo: Mapping[str, np.ndarray]) -> dict:
        """Mean and standard deviation of T, P and V: what the CLI prints and what people query."""
        summary = {}
        for key in ('temperature', 'pressure', 'volume', 'potential_energy'):
            values = thermo.get(key)
            if values is not None and len(values) and np.all(np.isfinite(values)):
                summary[key] = {'mean': float(np.mean(values)), 'std': float(np.std(values))}
        return summary

    @classmethod
    def from_files(cls, trajectory: str | Path, thermo: str | Path | None = None, **kwargs) -> MdTrajectoryData:
        """Build the node from the ``trajectory.npz`` and ``thermo.npz`` files of ``md_run.py``."""
        frames = _load_npz(Path(trajectory).read_bytes())
        thermo_arrays = _load_npz(Path(thermo).read_bytes()) if thermo and Path(thermo).exists() else {}
        kwargs.setdefault('numbers', frames['numbers'])
        kwargs.setdefault('pbc', frames['pbc'])
        return cls(frames, thermo_arrays, **kwargs)

    # ------------------------------------------------------------------------------------------------------------
    # reading

    def _frames(self) -> dict[str, np.ndarray]:
        cached = getattr(self, '_cached_frames', None)
        if cached is None:
            cached = _load_npz(self.base.repository.get_object_content(self.FRAMES_FILENAME, mode='rb'))
            self._cached_frames = cached
        return cached

    num_frames = stored_attribute('num_frames', 'Number of stored frames.')

    num_atoms = stored_attribute('num_atoms', 'Number of atoms per frame.')

    engine = stored_attribute(
        'engine', 'The engine that ran the MD (``ase``, ``lammps-python``, ``lammps-mliap``, ...).'
    )

    @property
    def numbers(self) -> np.ndarray:
        """Atomic numbers (the same in every frame)."""
        return self._frames()['numbers']

    @property
    def symbols(self) -> list[str]:
        """Chemical symbols (the same in every frame)."""
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in self.numbers]

    @property
    def pbc(self) -> np.ndarray:
        """Periodic boundary conditions."""
        return self._frames()['pbc']

    def get_arraynames(self) -> list[str]:
        """Names of the per-frame arrays stored."""
        return self.base.attributes.get('arrays')

    def get_array(self, name: str) -> np.ndarray:
        """Return the per-frame array ``name`` (see :data:`FRAME_ARRAYS`)."""
        frames = self._frames()
        if name not in FRAME_ARRAYS or name not in frames:
            raise KeyError(f'no frame array {name!r}; this trajectory has {", ".join(self.get_arraynames())}')
        return frames[name]

    def get_thermo(self) -> dict[str, np.ndarray]:
        """Return the thermodynamic time series (see :data:`THERMO_ARRAYS`)."""
        return _load_npz(self.base.repository.get_object_content(self.THERMO_FILENAME, mode='rb'))

    def get_atoms(self, index: int, labels: bool = True) -> Atoms:
        """Return frame ``index`` as ``Atoms`` (velocities set; labels as ``REF_*`` keys when ``labels``).

        MD frames are taken as neutral closed-shell periodic configurations (``charge`` 0, ``multiplicity`` 1),
        which is what the data sets expect of a MOF cell.
        """
        frames = self._frames()
        count = len(frames['positions'])
        if not -count <= index < count:
            raise IndexError(f'frame {index} does not exist; this trajectory has {count} frames')
        atoms = Atoms(
            numbers=frames['numbers'],
            positions=frames['positions'][index],
            cell=frames['cells'][index],
            pbc=frames['pbc'],
        )
        if 'velocities' in frames:
            atoms.set_velocities(frames['velocities'][index] / units.fs)
        atoms.info.update({'config_type': 'periodic' if atoms.pbc.all() else 'cluster', 'charge': 0, 'multiplicity': 1})
        for key, info in (('steps', 'md_step'), ('times', 'md_time')):
            if key in frames:
                atoms.info[info] = frames[key][index].item()
        if labels:
            if 'energies' in frames:
                atoms.info[ENERGY_KEY] = float(frames['energies'][index])
            if 'forces' in frames:
                atoms.arrays[FORCES_KEY] = np.array(frames['forces'][index])
            if 'stresses' in frames and atoms.pbc.all():
                atoms.info[STRESS_KEY] = np.array(frames['stresses'][index])
        return atoms

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[Atoms]:
        for index in range(self.num_frames):
            yield self.get_atoms(index)

    def export(self, path: str | Path, every: int = 1) -> Path:
        """Write every ``every``-th frame to ``path`` as extxyz with ``REF_energy``/``REF_forces``/``REF_stress``."""
        path = Path(path)
        frames = (self.get_atoms(index) for index in range(0, self.num_frames, every))
        path.write_text(write_extxyz(frames))
        return path

    def get_structure(self, index: int = -1) -> orm.StructureData:
        """Return frame ``index`` as an (unstored) ``StructureData``."""
        return orm.StructureData(ase=self.get_atoms(index, labels=False))
