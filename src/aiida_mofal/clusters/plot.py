"""Picture of a cluster coloured by role (core / mantle / cap), written as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import covalent_radii

__all__ = ['ROLE_COLOURS', 'plot_cluster']

ROLE_COLOURS = {'core': '#d62728', 'mantle': '#1f77b4', 'cap': '#bbbbbb'}


def plot_cluster(cluster: Atoms, path: str | Path, title: str | None = None, dpi: int = 150) -> Path:
    """Draw ``cluster`` projected on its two main axes, atoms coloured by ``role``, bonds as lines.

    The view is tilted from the cluster's smallest principal axis, atoms drawn back to front, so that the
    picture is readable for any orientation in the parent cell.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from aiida_mofal.structures.bonds import bond_graph

    pos = cluster.positions - cluster.positions.mean(axis=0)
    _, _, vt = np.linalg.svd(pos, full_matrices=False)
    xyz = pos @ vt.T  # x, y: largest spread; z: depth
    # tilt off the principal axes: symmetric clusters otherwise hide atoms behind each other
    a, b = np.radians(20.0), np.radians(28.0)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    xyz = xyz @ (ry @ rx).T
    roles = cluster.arrays.get('role', np.array(['core'] * len(cluster)))
    numbers = cluster.get_atomic_numbers()
    graph = bond_graph(cluster)
    keep = graph.unique()

    fig, ax = plt.subplots(figsize=(7, 7))
    for a, b in zip(graph.i[keep], graph.j[keep]):
        ax.plot(xyz[[a, b], 0], xyz[[a, b], 1], color='#444444', lw=0.8, zorder=1)
    order = np.argsort(xyz[:, 2])
    sizes = (covalent_radii[numbers] * 15) ** 2
    colours = [ROLE_COLOURS.get(str(r), 'k') for r in roles]
    ax.scatter(
        xyz[order, 0], xyz[order, 1], s=sizes[order], c=[colours[k] for k in order],
        edgecolors='k', linewidths=0.5, zorder=2,
    )  # fmt: skip
    handles = [
        Line2D([], [], marker='o', ls='', markerfacecolor=c, markeredgecolor='k', markersize=10,
               label=f'{role} ({int(np.sum(roles == role))})')
        for role, c in ROLE_COLOURS.items()
    ]  # fmt: skip
    ax.legend(handles=handles, loc='upper right', frameon=False)
    info = cluster.info
    ax.set_title(
        title
        or f'{cluster.get_chemical_formula()} — {len(cluster)} atoms, '
        f'charge {info.get("charge", "?")}, multiplicity {info.get("multiplicity", "?")}'
    )
    ax.set_aspect('equal')
    ax.axis('off')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches='tight')
    plt.close(fig)
    return path
