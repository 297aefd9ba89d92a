"""The campaign's MD-sampled test set for real: ASE MD of a trained tiny MACE at the test temperature, CP2K xTB labels.

The model is the session's one real training (``trained_tiny_model``, H C N O): a randomly initialised model is
no potential, and its 600 K walks blow up (the work chain then stops with exit status 410, as it should).

The campaign's own steps around it (when it is sampled, that it is kept) are tested against stand-ins in
``tests/workchains/test_campaign.py``; the whole campaign runs it in ``tests/engines/test_campaign.py`` and the demo.
"""

import mace  # noqa: F401  (first: it lets e3nn load its constants when a model is unpickled)
import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mofal.workchains.campaign_inputs import campaign_inputs
from aiida_mofal.workchains.campaign_test_set import CampaignTestSetWorkChain
from tests.conftest import xtb_meta
from tests.workchains.test_campaign import water_box

# the shared trained model takes a minute on an idle machine; far longer on a loaded one
pytestmark = [pytest.mark.engine, pytest.mark.timeout(3600)]


def test_md_test_frames_are_walked_at_the_test_temperature_and_labelled(mofal_codes, trained_tiny_model):
    overrides = {'initial': {'test_frames': 3, 'test_temperature': 600.0, 'test_steps': 40}}  # a frame every 10
    inputs = campaign_inputs(None, {'water': water_box()}, overrides=overrides)
    builder = CampaignTestSetWorkChain.get_builder()
    builder.settings, builder.targets = inputs['settings'], inputs['targets']
    builder.cp2k_code, builder.md_code = inputs['cp2k_code'], inputs['md_code']
    builder.model = trained_tiny_model.model
    e0s = xtb_meta()['isolated_atom_energies']
    builder.isolated_atom_energies = orm.Dict({'H': e0s['H'], 'O': e0s['O']})  # given: no free-atom jobs
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    (md,) = [child for child in node.called if child.process_label == 'MdBaseWorkChain']
    (stage,) = md.inputs.md.walks.walk_0.settings['schedule']
    assert stage['temperature'] == [600.0, 600.0] and stage['steps'] == 40
    assert md.inputs.md.walks.walk_0.settings['ensemble'] == 'nvt'  # the default test walk keeps the cell
    trajectory = md.outputs.walks.walk_0.trajectory
    assert trajectory.num_frames == 5  # the start and 4 dumps
    dataset = results['dataset']
    frames = dataset.get_atoms()
    assert [a.info['frame'] for a in frames] == [2, 3, 4]  # the second half of the walk, never its start
    assert {a.info['campaign_set'] for a in frames} == {'test'} and {a.info['target'] for a in frames} == {'water'}
    assert {'energy', 'forces', 'stress'} <= set(dataset.labels)
    assert dataset.isolated_atom_energies['H'] == pytest.approx(e0s['H'], abs=1e-9)  # stored as text
    energies = [a.info['REF_energy'] for a in frames]
    assert np.std(energies) > 0  # different configurations: a ΔE_std that is not 0 by construction
    start = water_box().positions
    assert all(np.abs(a.positions - start).max() > 1e-3 for a in frames)
