"""MdTrajectoryData: one node per run, arrays in the repository, frames as Atoms and extxyz."""

import numpy as np
import pytest
from aiida import orm

from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.mlp.configurations import read_extxyz


def make_arrays(frames=4, atoms=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        'steps': np.arange(frames) * 10,
        'times': np.arange(frames) * 5.0,
        'positions': rng.uniform(0, 5, (frames, atoms, 3)),
        'cells': np.array([np.eye(3) * (5.0 + 0.1 * i) for i in range(frames)]),
        'energies': rng.normal(size=frames),
        'forces': rng.normal(size=(frames, atoms, 3)),
        'stresses': rng.normal(size=(frames, 6)) * 1e-3,
        'velocities': rng.normal(size=(frames, atoms, 3)) * 1e-2,
    }


def test_store_reload_and_read_frames(aiida_profile, tmp_path):
    arrays = make_arrays()
    thermo = {'step': np.arange(4) * 10.0, 'temperature': np.array([300.0, 310.0, 290.0, 300.0]),
              'pressure': np.zeros(4), 'volume': np.full(4, 125.0)}  # fmt: skip
    node = MdTrajectoryData(arrays, thermo, numbers=[29, 29, 8], engine='ase', timestep=0.5, ensemble='nvt').store()
    loaded = orm.load_node(node.pk)
    assert len(loaded) == 4 and loaded.num_atoms == 3 and loaded.engine == 'ase'
    assert loaded.base.attributes.get('elements') == ['O', 'Cu']  # by atomic number, as data sets do
    assert loaded.base.attributes.get('summary')['temperature']['mean'] == pytest.approx(300.0)
    assert np.array_equal(loaded.get_array('forces'), arrays['forces'])
    assert loaded.get_thermo()['temperature'][1] == 310.0
    atoms = loaded.get_atoms(2)
    assert np.allclose(atoms.positions, arrays['positions'][2]) and np.allclose(atoms.cell.array, arrays['cells'][2])
    assert atoms.info['REF_energy'] == arrays['energies'][2] and atoms.info['md_step'] == 20
    assert np.allclose(atoms.get_velocities() * 0.09822694788464063, arrays['velocities'][2])  # Å/fs
    assert [a.info['md_step'] for a in loaded] == [0, 10, 20, 30]
    frames = read_extxyz(str(loaded.export(tmp_path / 'out.xyz', every=2)))
    assert len(frames) == 2
    assert np.array_equal(frames[1].arrays['REF_forces'], arrays['forces'][2])
    assert np.allclose(frames[1].info['REF_stress'], arrays['stresses'][2])
    assert loaded.get_structure().get_ase().get_chemical_symbols() == ['Cu', 'Cu', 'O']
    with pytest.raises(IndexError):
        loaded.get_atoms(4)
    with pytest.raises(KeyError, match='no frame array'):
        loaded.get_array('temperature')


def test_inconsistent_arrays_are_refused(aiida_profile):
    arrays = make_arrays()
    with pytest.raises(ValueError, match='numbers has 2'):
        MdTrajectoryData(arrays, numbers=[29, 29])
    bad = {**arrays, 'forces': arrays['forces'][:, :2]}
    with pytest.raises(ValueError, match="'forces' has shape"):
        MdTrajectoryData(bad, numbers=[29, 29, 8])
    with pytest.raises(ValueError, match='different lengths'):
        MdTrajectoryData(arrays, {'step': np.arange(3), 'temperature': np.arange(4)}, numbers=[29, 29, 8])
