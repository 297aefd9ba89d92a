"""Structural analysis of ZIF glasses (Castel & Coudert): RDFs, PMF, N–Zn–N angles, coordination, density, rings.

One call, :func:`analyse_glass`, takes one structure or trajectory frames (ASE ``Atoms``) and returns a JSON-ready
dictionary; frames are averaged and their spread across frames is reported next to the mean. Units: Å, degrees,
g/cm³, K; free energies in kJ/mol (the paper's unit) and eV.

What is computed, per frame:

- partial RDFs g_ab(r) of the chosen element pairs (normalisation in :mod:`.rdf`), their first peak and minimum;
- the potential of mean force F(r) = −k_B T (ln g(r) − ln g_max) of each pair, and its barrier F(r_min) − F(r_peak);
- the metal–ligand (Zn–N) coordination number with a 2.5 Å cutoff, and the fraction of metals with each number;
- the N–Zn–N angle distribution (angles between the contacts of one Zn), with its angular PMF
  F(θ) = −k_B T ln(P(θ) / sin θ) (the sin θ removes the solid-angle weight of a uniform distribution);
- the density;
- primitive-ring statistics of the Zn–imidazolate net (:mod:`.network`, :mod:`.rings`), as rings per cell by number
  of Zn. The ring search runs once per distinct net: frames whose net did not change reuse it.

The result also holds ``settings`` (the parameters used) and ``timings_s`` (seconds per part, for the benchmark).

With a ``reference`` (the crystal), the distance to it: Wright's R_χ of every partial RDF and of the angle
distribution, and the differences of density, coordination number and ring counts.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from ase import Atoms, units
from ase.data import atomic_masses, atomic_numbers, chemical_symbols

from . import network, rdf, rings

__all__ = ['DEFAULT_PAIRS', 'GlassSettings', 'analyse_glass', 'compare_to_reference', 'parse_pairs']

DEFAULT_PAIRS = ('Zn-N', 'Zn-Zn', 'N-N')
KJ_MOL = units.kJ / units.mol  # eV per kJ/mol
AMU_A3_TO_G_CM3 = 1.0e24 / units.mol  # 1 amu/Å³ in g/cm³


@dataclass(frozen=True)
class GlassSettings:
    """Parameters of the analysis; the defaults are the paper's choices where it makes one."""

    pairs: tuple[str, ...] = DEFAULT_PAIRS
    r_max: float = 10.0  # Å, RDF range
    bin_width: float = 0.05  # Å
    temperature: float = 300.0  # K, for the PMFs
    metal: str = 'Zn'
    ligand: str = 'N'
    cutoff: float = 2.5  # Å, metal–ligand contact (coordination, angles, net)
    angle_bin: float = 1.0  # degrees
    rings: bool = True
    max_ring_size: int = 16  # metals per ring: 32-membered Zn–Im alternate rings, the paper's search depth
    ring_every: int = 1  # rings on every n-th frame (the paper: every 10th, 1 ps against 100 fs for the RDFs)
    smearing: float = 0.1  # Å, Gaussian smoothing of RDFs before R_χ

    def __post_init__(self):
        object.__setattr__(self, 'pairs', tuple('-'.join(pair) for pair in parse_pairs(self.pairs)))
        for name in ('r_max', 'bin_width', 'temperature', 'cutoff', 'angle_bin'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be positive, got {getattr(self, name)}')
        if self.bin_width >= self.r_max:
            raise ValueError(f'bin_width ({self.bin_width} Å) must be smaller than r_max ({self.r_max} Å)')
        if self.ring_every < 1:
            raise ValueError(f'ring_every must be a positive number of frames, got {self.ring_every}')
        if self.max_ring_size < 2:
            raise ValueError(f'max_ring_size counts metals per ring and must be at least 2, got {self.max_ring_size}')
        for element in (self.metal, self.ligand):
            _check_element(element, f'{self.metal}-{self.ligand}')

    @property
    def edges(self) -> np.ndarray:
        """RDF bin edges, 0 to ``r_max`` Å."""
        return np.arange(0.0, self.r_max + 0.5 * self.bin_width, self.bin_width)


def _check_element(symbol: str, pair: str) -> None:
    if symbol not in atomic_numbers or symbol == 'X':
        raise ValueError(
            f'unknown element {symbol!r} in pair {pair!r}: a pair is two element symbols joined by "-", '
            'for example Zn-N,Zn-Zn,N-N'
        )


def parse_pairs(pairs: str | Iterable) -> list[tuple[str, str]]:
    """Parse ``'Zn-N,Zn-Zn'`` or ``['Zn-N', ('Zn', 'Zn')]`` into element pairs; refuses anything else with the fix."""
    items = [part.strip() for part in pairs.split(',')] if isinstance(pairs, str) else list(pairs)
    parsed = []
    for item in items:
        parts = item.split('-') if isinstance(item, str) else list(item)
        if len(parts) != 2 or not all(parts):
            raise ValueError(f'cannot read the pair {item!r}: write two element symbols joined by "-", e.g. Zn-N')
        a, b = (part.strip() for part in parts)
        for symbol in (a, b):
            _check_element(symbol, f'{a}-{b}')
        if (a, b) not in parsed:
            parsed.append((a, b))
    if not parsed:
        raise ValueError('no element pairs given: for example --pairs Zn-N,Zn-Zn,N-N')
    return parsed


def analyse_glass(
    frames: Atoms | Sequence[Atoms], settings: GlassSettings | None = None, reference: Atoms | None = None, **options
) -> dict:
    """Analyse one structure or trajectory frames; ``options`` override fields of ``settings`` (see the module)."""
    settings = replace(settings or GlassSettings(), **options)
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    if not frames:
        raise ValueError('no frames to analyse')
    numbers = frames[0].numbers
    for index, atoms in enumerate(frames):
        if not np.array_equal(atoms.numbers, numbers):
            raise ValueError(f'frame {index} does not have the atoms of frame 0: analyse one composition at a time')
    context = _Context(settings, numbers)
    per_frame = [_analyse_frame(atoms, context, index) for index, atoms in enumerate(frames)]
    result = _json_ready(_aggregate(per_frame, context, frames[0]))
    if reference is not None:
        result['reference'] = compare_to_reference(result, analyse_glass(reference, settings))
    return result


class _Context:
    """What every frame shares: settings, which pairs exist, and the ring cache."""

    def __init__(self, settings: GlassSettings, numbers: np.ndarray):
        self.settings = settings
        self.numbers = numbers
        present = {chemical_symbols[z] for z in numbers}
        self.pairs = [tuple(pair.split('-')) for pair in settings.pairs]
        self.warnings: list[str] = []
        self.missing = [f'{a}-{b}' for a, b in self.pairs if a not in present or b not in present]
        for name in self.missing:
            self.warnings.append(
                f'no {name} pairs: the structure contains {", ".join(sorted(present))}; '
                f'choose --pairs among its elements'
            )
        self.available = [(a, b) for a, b in self.pairs if f'{a}-{b}' not in self.missing]
        self.coordination = settings.metal in present and settings.ligand in present
        if not self.coordination:
            self.warnings.append(
                f'no {settings.metal}-{settings.ligand} pairs: coordination, {settings.ligand}-{settings.metal}-'
                f'{settings.ligand} angles and rings need both elements (the structure contains '
                f'{", ".join(sorted(present))})'
            )
        wanted = {s for pair in self.available for s in pair}
        if self.coordination:
            wanted |= {settings.metal, settings.ligand}
        self.selection = np.flatnonzero(np.isin(numbers, [atomic_numbers[s] for s in wanted]))
        self.ring_cache: dict[bytes, dict[int, int]] = {}
        self.ring_nets = 0
        self.timings: dict[str, float] = {}


def _analyse_frame(atoms: Atoms, context: _Context, index: int = 0) -> dict:
    settings = context.settings
    edges = settings.edges
    clock = _Clock(context.timings)
    reach = max(settings.r_max, settings.cutoff if context.coordination else 0.0)
    pairs = rdf.neighbour_pairs(atoms, reach, context.selection)
    clock.lap('neighbour_list')
    volume = atoms.cell.volume
    counts = {chemical_symbols[z]: int(np.sum(atoms.numbers == z)) for z in np.unique(atoms.numbers)}
    frame: dict = {
        'volume': volume,
        'density': float(atomic_masses[atoms.numbers].sum() / volume * AMU_A3_TO_G_CM3),
        'rdf': {},
    }
    for a, b in context.available:
        histogram = rdf.pair_histogram(pairs, atoms.numbers, atomic_numbers[a], atomic_numbers[b], edges)
        frame['rdf'][f'{a}-{b}'] = rdf.rdf_from_counts(histogram, counts[a], counts[b], a == b, volume, edges)
    clock.lap('rdf')
    if context.coordination:
        frame.update(_coordination(atoms, pairs, context))
        clock.lap('coordination_angles')
        if settings.rings and index % settings.ring_every == 0:
            frame['rings'] = _rings(atoms, frame.pop('contacts'), context)
            clock.lap('rings')
    return frame


class _Clock:
    """Wall time per part of the analysis, summed over frames (what ``benchmarks/glass.py`` prints)."""

    def __init__(self, totals: dict[str, float]):
        self.totals, self.last = totals, time.perf_counter()

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.totals[part] = self.totals.get(part, 0.0) + now - self.last
        self.last = now


def _coordination(atoms: Atoms, pairs: rdf.NeighbourPairs, context: _Context) -> dict:
    settings = context.settings
    metal, ligand = atomic_numbers[settings.metal], atomic_numbers[settings.ligand]
    zi, zj = atoms.numbers[pairs.i], atoms.numbers[pairs.j]
    close = pairs.distance <= settings.cutoff
    forward = close & (zi == metal) & (zj == ligand)
    backward = close & (zi == ligand) & (zj == metal)
    centre = np.concatenate([pairs.i[forward], pairs.j[backward]])
    vectors = np.concatenate([pairs.vector[forward], -pairs.vector[backward]])
    lengths = np.concatenate([pairs.distance[forward], pairs.distance[backward]])
    metals = np.flatnonzero(atoms.numbers == metal)
    slot = np.full(len(atoms), -1)
    slot[metals] = np.arange(len(metals))
    per_metal = np.bincount(slot[centre], minlength=len(metals))
    # angles between the contacts of one metal, grouped by coordination number for vectorised combinations
    order = np.argsort(slot[centre], kind='stable')
    vectors = vectors[order] / lengths[order, None]
    start = np.concatenate([[0], np.cumsum(per_metal)[:-1]])
    angles = []
    for size in np.unique(per_metal[per_metal >= 2]):
        rows = start[per_metal == size][:, None] + np.arange(size)[None, :]
        for p, q in itertools.combinations(range(size), 2):
            cosine = np.einsum('ij,ij->i', vectors[rows[:, p]], vectors[rows[:, q]])
            angles.append(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))
    contacts = rdf.NeighbourPairs(
        np.concatenate([pairs.i[forward], pairs.j[backward]]),
        np.concatenate([pairs.j[forward], pairs.i[backward]]),
        lengths,
        np.concatenate([pairs.shift[forward], -pairs.shift[backward]]),
        np.concatenate([pairs.vector[forward], -pairs.vector[backward]]),
    )
    return {
        'coordination': per_metal,
        'bond_length': float(lengths.mean()) if len(lengths) else None,
        'angles': np.concatenate(angles) if angles else np.zeros(0),
        'contacts': contacts,
    }


def _rings(atoms: Atoms, contacts: rdf.NeighbourPairs, context: _Context) -> dict[int, int]:
    settings = context.settings
    bonds = network.organic_bonds(atoms)
    found = network.linkers(atoms, bonds, ligand=settings.ligand)
    net = network.metal_linker_net(atoms, contacts, found, metal=settings.metal)
    key = net.graph.invariant_key()
    counts = context.ring_cache.get(key)
    if counts is None:
        metals = range(net.n_metals)
        found_rings = rings.primitive_rings(net.graph, 2 * settings.max_ring_size, sources=metals)
        counts = rings.ring_counts(found_rings, weight_label=settings.metal, labels=net.graph.labels)
        context.ring_cache[key] = counts
        context.ring_nets += 1
    context.linkers, context.metals = net.n_linkers, net.n_metals
    return counts


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std())


def _aggregate(per_frame: list[dict], context: _Context, first: Atoms) -> dict:
    settings = context.settings
    edges = settings.edges
    r = np.round(0.5 * (edges[1:] + edges[:-1]), 9)  # bin centres, without float noise in the JSON
    density = _mean_std([frame['density'] for frame in per_frame])
    result: dict = {
        'n_frames': len(per_frame),
        'n_atoms': len(first),
        'formula': first.get_chemical_formula(mode='hill'),
        'settings': asdict(settings),
        'density_g_cm3': density[0],
        'density_g_cm3_std': density[1],
        'volume_A3': _mean_std([frame['volume'] for frame in per_frame])[0],
        'rdf': {},
        'pmf': {},
        'missing_pairs': context.missing,
        'warnings': context.warnings,
        'timings_s': context.timings,
    }
    kt = units.kB * settings.temperature
    for name in (f'{a}-{b}' for a, b in context.available):
        stack = np.array([frame['rdf'][name] for frame in per_frame])
        g = stack.mean(axis=0)
        peak = rdf.first_peak(r, g)
        result['rdf'][name] = {
            'r': r,
            'g': g,
            'g_std': stack.std(axis=0),
            'first_peak': peak['position'],
            **{'first_peak_height': peak['height'], 'first_minimum': peak['minimum']},
        }
        free = rdf.potential_of_mean_force(g, settings.temperature)
        barrier = None
        if peak['height'] and peak['minimum_height']:
            barrier = float(-kt * np.log(peak['minimum_height'] / peak['height']) / KJ_MOL)
        result['pmf'][name] = {'r': r, 'F_kJ_mol': free / KJ_MOL, 'F_eV': free, 'barrier_kJ_mol': barrier}
    if not context.coordination:
        result.update({'coordination': {}, 'angles': {}, 'rings': {} if settings.rings else None})
        return result
    metal, ligand = settings.metal, settings.ligand
    pair, triple = f'{metal}-{ligand}', f'{ligand}-{metal}-{ligand}'
    per_metal = np.array([frame['coordination'] for frame in per_frame])
    numbers, frequency = np.unique(per_metal, return_counts=True)
    bonds = [frame['bond_length'] for frame in per_frame if frame['bond_length'] is not None]
    result['coordination'] = {pair: float(per_metal.mean()) if per_metal.size else None}
    result['coordination_details'] = {
        pair: {
            'mean': float(per_metal.mean()) if per_metal.size else None,
            'std': _mean_std(per_metal.mean(axis=1))[1] if per_metal.size else None,
            'cutoff_A': settings.cutoff,
            'fractions': {str(int(k)): float(v / per_metal.size) for k, v in zip(numbers, frequency, strict=True)},
            'bond_length_A': float(np.mean(bonds)) if bonds else None,
            'n_metals': int(per_metal.shape[1]),
        }
    }
    result['angles'] = {triple: _angles(per_frame, settings, kt)}
    if settings.rings:
        searched = [frame['rings'] for frame in per_frame if 'rings' in frame]
        sizes = sorted({size for counts in searched for size in counts})
        table = np.array([[counts.get(size, 0) for size in sizes] for counts in searched], dtype=float)
        means = table.mean(axis=0) if sizes else []
        result['rings'] = {str(size): float(value) for size, value in zip(sizes, means, strict=True)}
        result['ring_details'] = {
            'definition': 'primitive rings of the Zn-imidazolate net (R.I.N.G.S. / Franzblau shortest-path rings)',
            'size_unit': f'{metal} per ring (the alternate {metal}-Im ring has twice as many members)',
            'max_size': settings.max_ring_size,
            'std': {str(size): float(v) for size, v in zip(sizes, table.std(axis=0) if sizes else [], strict=True)},
            'per_metal': {str(size): float(v / context.metals) for size, v in zip(sizes, means, strict=True)},
            'n_metals': context.metals,
            'n_linkers': context.linkers,
            'frames': len(searched),
            'distinct_nets': context.ring_nets,
        }
    return result


def _angles(per_frame: list[dict], settings: GlassSettings, kt: float) -> dict:
    edges = np.arange(0.0, 180.0 + 0.5 * settings.angle_bin, settings.angle_bin)
    centres = np.round(0.5 * (edges[1:] + edges[:-1]), 9)
    pooled = np.concatenate([frame['angles'] for frame in per_frame])
    if not len(pooled):
        return {
            'mean': None,
            'std': None,
            'count': 0,
            'histogram': {'theta_deg': centres, 'density': np.zeros_like(centres)},
        }
    density, _ = np.histogram(pooled, bins=edges, density=True)
    weight = density / np.sin(np.radians(centres))
    with np.errstate(divide='ignore'):
        free = -kt * np.log(weight / weight.max())
    free[~np.isfinite(free)] = np.nan
    means = [frame['angles'].mean() for frame in per_frame if len(frame['angles'])]
    return {
        'mean': float(pooled.mean()),
        'std': float(pooled.std()),
        'mean_std_over_frames': _mean_std(means)[1],
        'count': int(len(pooled)),
        'histogram': {'theta_deg': centres, 'density': density},
        'pmf_kJ_mol': free / KJ_MOL,
    }


def compare_to_reference(result: dict, reference: dict) -> dict:
    """Say how far ``result`` is from ``reference`` (both from :func:`analyse_glass`, with the same settings).

    R_χ of every common partial RDF (0: identical; the RDFs are smoothed by ``settings.smearing`` Å first) and of the
    angle distribution (smoothed by 2°), the density ratio, and the differences of coordination and ring counts.
    """
    settings = result['settings']
    if any(settings[key] != reference['settings'][key] for key in ('r_max', 'bin_width', 'angle_bin')):
        raise ValueError('compare analyses made with the same r_max, bin_width and angle_bin')
    distance: dict = {'rdf_r_chi': {}, 'formula': reference['formula'], 'density_g_cm3': reference['density_g_cm3']}
    for name, entry in result['rdf'].items():
        if name in reference['rdf']:
            distance['rdf_r_chi'][name] = rdf.r_chi(
                entry['g'], reference['rdf'][name]['g'], settings['bin_width'], settings['smearing']
            )
    distance['density_ratio'] = result['density_g_cm3'] / reference['density_g_cm3']
    for key in ('coordination', 'rings'):
        mine, theirs = result.get(key) or {}, reference.get(key) or {}
        distance[key] = theirs
        distance[f'{key}_difference'] = {
            k: (mine.get(k) or 0.0) - (theirs.get(k) or 0.0) for k in sorted(set(mine) | set(theirs), key=_size_key)
        }
    triple = next(iter(result.get('angles') or {}), None)
    if triple and triple in (reference.get('angles') or {}):
        mine, theirs = result['angles'][triple]['histogram'], reference['angles'][triple]['histogram']
        distance['angle_r_chi'] = {triple: rdf.r_chi(mine['density'], theirs['density'], settings['angle_bin'], 2.0)}
    return distance


def _size_key(key: str):
    return (0, int(key)) if key.isdigit() else (1, key)


def _json_ready(value):
    """Arrays to lists, numpy scalars to Python, nan/inf to None (JSON has no nan)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_ready(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
