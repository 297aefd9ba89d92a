"""The study WorkGraph of a melt-quench of 2 glasses links glass_0 and glass_1 downstream in the graph the *engine*
runs: each graph is serialised (``to_engine_inputs``) and rebuilt from that dict (``WorkGraph.from_dict``, as
``WorkGraphEngine`` does), so a socket that exists only on the live Python object is lost there."""

import yaml
from aiida import orm

from tests.conftest import ROOT

EXAMPLES = ROOT / 'examples'
STRUCTURES = ROOT / 'tests' / 'data_files' / 'structures'


def _study(tmp_path):
    campaign = yaml.safe_load((EXAMPLES / 'campaign_zif4_tiny.yaml').read_text())
    campaign['targets'][0]['structure'] = str(STRUCTURES / 'ZIF-4_Lewis2009.cif')
    (tmp_path / 'campaign.yaml').write_text(yaml.safe_dump(campaign))
    shipped = yaml.safe_load((EXAMPLES / 'study_zif4_glass.yaml').read_text())
    assert shipped['melt_quench']['glasses'] == 2
    study = {
        'name': 'zif4-links',
        'campaign': {'file': 'campaign.yaml'},
        'melt_quench': shipped['melt_quench'],
        'eos': {'workflow': 'fit', 'structures': ['crystal', 'glasses']},
        'glass_analysis': {'settings': {'rings': False}},
    }
    (tmp_path / 'study.yaml').write_text(yaml.safe_dump(study))
    return tmp_path / 'study.yaml'


def _links(graph) -> set[tuple[str, str, str, str]]:
    return {
        (link.from_task.name, link.from_socket._scoped_name, link.to_task.name, link.to_socket._scoped_name)
        for link in graph.links
    }


def _stored(graph):
    """The graph as the engine gets it: serialised into the process inputs, then rebuilt from them (its setup)."""
    from aiida_workgraph import WorkGraph
    from aiida_workgraph.utils import restore_workgraph_data_from_raw_inputs

    return WorkGraph.from_dict(restore_workgraph_data_from_raw_inputs(graph.to_engine_inputs()))


def _materialise(task, **kwargs):
    """Run a graph task's function as ``GraphTask.execute`` does, with real input values: its inner WorkGraph."""
    from aiida_workgraph import WorkGraph
    from node_graph.executor import RuntimeExecutor
    from node_graph.utils.graph import materialize_graph

    executor = RuntimeExecutor(**task.get_executor().to_dict()).callable
    executor = getattr(executor, '_callable', executor)
    return materialize_graph(
        executor, task.spec.inputs, task.spec.outputs, task.name, WorkGraph, args=(), kwargs=kwargs
    )


def test_two_glasses_reach_the_analysis_in_the_stored_graphs(mofal_codes, tmp_path):
    from aiida_mofal.data import MaceModelData
    from aiida_mofal.study.config import load_study
    from aiida_mofal.workchains.study import build_study_graph
    from tests.mlp.mace_models import build_mace_model

    graph = build_study_graph(load_study(_study(tmp_path)))
    # the study graph: the melt-quench slot's outputs (glass_<k>) feed the analysis's glasses namespace
    assert ('melt_quench', '_outputs', 'analysis', 'glasses') in _links(_stored(graph))

    # the slot's own graph, built at run time with the campaign's model: the work chain's replica_<k>.structure
    # outputs are its glass_0 and glass_1, also after the round trip through the stored dict
    zif = build_mace_model(tmp_path / 'zif.model', atomic_numbers=(1, 6, 7, 30), hidden_irreps='8x0e')
    model = MaceModelData(zif, trusted=True).store()
    melt = graph.tasks['melt_quench']
    values = {name: melt.inputs[name].value for name in ('structure', 'code', 'settings')}
    inner = _materialise(melt, model=model, **values)
    expected = {('melt_quench', f'glasses.replica_{k}.structure', 'graph_outputs', f'glass_{k}') for k in range(2)}
    assert expected <= _links(inner)
    stored = _stored(inner)  # raised "replica_0.structure is not in this namespace" when the sockets were live only
    assert expected <= _links(stored)
    fields = stored.tasks['melt_quench'].spec.outputs.fields['glasses'].fields
    assert sorted(fields) == ['replica_0', 'replica_1'] and 'structure' in fields['replica_0'].fields
    # what the engine does with the finished work chain's outputs (set_outputs_from_process_node): every output
    # of each replica goes in, not only the structure the link needs
    glass = orm.StructureData(cell=[[10.0, 0, 0], [0, 10.0, 0], [0, 0, 10.0]])
    replica = {'structure': glass, 'trajectory': orm.Int(1), 'integrity': orm.Dict(), 'analysis': orm.Dict()}
    outputs = stored.tasks['melt_quench'].outputs
    outputs._set_socket_value({'supercell': glass, 'glasses': {f'replica_{k}': dict(replica) for k in range(2)}})
    assert outputs['glasses.replica_1.structure'].value is glass

    # the analysis graph with the two glasses: each gets its EOS fit and its glass analysis, linked from the inputs
    analysis = graph.tasks['analysis']
    crystal = analysis.inputs['crystal'].value
    glasses = {f'glass_{k}': crystal.clone() for k in range(2)}
    values = {name: analysis.inputs[name].value for name in ('crystal', 'code', 'settings')}
    inner = _stored(_materialise(analysis, model=model, glasses=glasses, **values))
    assert inner.max_number_jobs == 2  # the study's concurrency (its default), not the inner graph's own 1,000,000
    tasks = {task.name for task in inner.tasks}
    for k in range(2):
        assert {f'eos_glass_{k}', f'glass_glass_{k}'} <= tasks
        assert ('graph_inputs', f'glasses.glass_{k}', f'eos_glass_{k}', 'structure') in _links(inner)
        assert ('graph_inputs', f'glasses.glass_{k}', f'glass_glass_{k}', 'structure') in _links(inner)
        assert (f'glass_glass_{k}', 'result', 'graph_outputs', f'glass_glass_{k}') in _links(inner)
    assert isinstance(model, orm.Data)
