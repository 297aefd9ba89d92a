"""The issue's checklist for one extracted cluster, verified against the parent's own bond graph."""

import numpy as np
from ase.neighborlist import neighbor_list

from aiida_mofal.clusters.extract import cap_length
from aiida_mofal.structures.bonds import bond_graph
from aiida_mofal.structures.charges import formal_charges


def check_cluster(parent, graph, cluster, vacuum=6.0, complete_core=True):
    roles = cluster.arrays['role']
    parents = cluster.arrays['parent_index']
    pos = cluster.positions
    cell = parent.cell.array
    assert set(roles) <= {'core', 'mantle', 'cap'} and 'core' in roles
    assert np.all((parents == -1) == (roles == 'cap'))
    assert np.all(cluster.numbers[roles == 'cap'] == 1)
    assert not cluster.pbc.any()
    assert cluster.info['config_type'] == 'cluster'

    # no two atoms closer than 0.7 Å
    assert len(neighbor_list('i', cluster, 0.7)) == 0

    # vacuum: at least `vacuum` Å between every atom and the box faces
    lengths = np.diag(cluster.cell.array)
    assert np.all(pos.min(axis=0) >= vacuum - 1e-6) and np.all(lengths - pos.max(axis=0) >= vacuum - 1e-6)

    # parent atoms are reproduced (up to one translation per periodic image) with their own symbols
    real = np.flatnonzero(parents >= 0)
    assert np.array_equal(cluster.numbers[real], parent.numbers[parents[real]])
    frac = np.linalg.solve(cell.T, (pos[real] - parent.positions[parents[real]]).T).T
    images = np.round(frac)
    origin = frac - images
    assert np.allclose(origin, origin[0], atol=1e-6)

    # walk every parent bond of every non-cap atom: partner inside, or exactly one cap on the bond vector
    caps = np.flatnonzero(roles == 'cap')
    used_caps = np.zeros(len(cluster), dtype=int)
    lookup = {(int(p), tuple(np.round(x, 3))): c for c, p, x in zip(real, parents[real], pos[real])}
    for c in real:
        p = parents[c]
        sl = graph.neighbors(p)
        for q, s in zip(graph.j[sl], graph.shift[sl]):
            d = parent.positions[q] + s @ cell - parent.positions[p]
            target = tuple(np.round(pos[c] + d, 3))
            if (int(q), target) in lookup:
                continue
            # a cut bond: with a mantle, core atoms never have one (complete first shell)
            assert not complete_core or roles[c] != 'core', f'core atom {c} misses its neighbour {q}'
            expected = pos[c] + cap_length(cluster.get_chemical_symbols()[c]) * d / np.linalg.norm(d)
            hit = caps[np.linalg.norm(pos[caps] - expected, axis=1) < 1e-4]
            assert len(hit) == 1, f'cut bond {p}-{q} capped {len(hit)} times'
            used_caps[hit] += 1
    # every cap belongs to exactly one cut bond
    assert np.all(used_caps[caps] == 1)

    # no dangling H: every H has exactly one bond inside the cluster (distance-based)
    cg = bond_graph(cluster)
    assert np.all(cg.degree[cluster.numbers == 1] == 1)

    # charge and multiplicity consistent with the electron count, and reproduced from geometry alone
    n_electrons = int(cluster.numbers.sum()) - cluster.info['charge']
    assert (n_electrons - (cluster.info['multiplicity'] - 1)) % 2 == 0
    fc = formal_charges(cluster, cg)
    assert (fc.charge, fc.multiplicity) == (cluster.info['charge'], cluster.info['multiplicity'])
