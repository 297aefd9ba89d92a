"""CP2K input for one labelling single point, built from a labelling protocol and the structure itself.

The structure decides what the protocol alone cannot: a periodic cell gets ``STRESS_TENSOR ANALYTICAL`` and
Ewald sums; a cluster gets ``PERIODIC NONE``, a Poisson solver that suits it and a box sized from its own
extent (the Martyna–Tuckerman solver needs a box about twice the extent of the charge density, so a fixed
box is wrong for large clusters and wasteful for small ones); ``CHARGE``, ``MULTIPLICITY`` and ``UKS`` come
from the configuration. The dictionaries are in aiida-cp2k's format (nested sections, ``'_'`` for a section
parameter, lists for repeated sections).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from ase import Atoms

from aiida_mofal.mlp.configurations import ConfigurationError, validate_configuration

from .checks import DISPERSIONS, MAX_LABEL_ATOMS
from .elements import XTB_MAX_Z, atom_multiplicity, available_names
from .sections import merge_sections

__all__ = (
    'LabelInputError',
    'build_cp2k_parameters',
    'check_labelling_input',
    'cluster_box',
    'isolated_atom',
    'level_of_theory',
    'merge_sections',
    'robust_scf_section',
)

RESTART_WFN = 'parent_calc/aiida-RESTART.wfn'


class LabelInputError(ValueError):
    """A structure the protocol cannot label; the message names the structure and the fix."""


def level_of_theory(settings: Mapping) -> dict:
    """Return what makes labels comparable: data sets with different levels of theory must never be merged."""
    if settings['method'] == 'xtb':
        return {'code': 'CP2K', 'method': 'GFN1-xTB'}
    basis = dict(settings['basis_set'])
    return {
        'code': 'CP2K',
        'method': 'DFT',
        'xc': settings['xc'],
        'dispersion': settings['dispersion'] or 'none',
        'basis_set': basis,
        'pseudopotential': settings['pseudopotential'],
        'cutoff_ry': settings['cutoff'],
        'rel_cutoff_ry': settings['rel_cutoff'],
        'eps_scf': settings['scf']['eps_scf'],
    }


def cluster_box(atoms: Atoms, settings: Mapping) -> np.ndarray:
    """Return the orthorhombic box edges (Å) for a non-periodic CP2K run of ``atoms``.

    Every edge is at least the cluster's extent plus ``vacuum`` on both sides; with the MT Poisson solver it is
    also at least ``box_factor`` times the extent of the charge density (atoms + ``density_margin`` each side).
    """
    cluster = settings['cluster']
    extent = np.ptp(atoms.positions, axis=0) if len(atoms) > 1 else np.zeros(3)
    edges = extent + 2 * cluster['vacuum']
    if settings['method'] == 'dft' and cluster['poisson_solver'].upper() == 'MT':
        edges = np.maximum(edges, cluster['box_factor'] * (extent + 2 * cluster['density_margin']))
    return np.round(edges, 3)


def _ot(eps_scf: float, max_scf: int, outer_max_scf: int, minimizer: str = 'DIIS') -> dict:
    return {
        'SCF_GUESS': 'ATOMIC',
        'EPS_SCF': eps_scf,
        'MAX_SCF': max_scf,
        'OT': {'MINIMIZER': minimizer, 'PRECONDITIONER': 'FULL_SINGLE_INVERSE'},
        'OUTER_SCF': {'MAX_SCF': outer_max_scf, 'EPS_SCF': eps_scf},
        'PRINT': {'RESTART': {'BACKUP_COPIES': 0}},
    }


def robust_scf_section(method: str, eps_scf: float, max_scf: int, electrons: int, temperature: float = 300.0) -> dict:
    """Return the SCF section for a system whose default SCF did not converge (guess: the failed wavefunction).

    * DFT (default OT): diagonalisation with Broyden mixing and Fermi-Dirac smearing at ``temperature`` K, with
      10 % of the electron count (at least 10) as added orbitals -- the standard cure for small-gap systems.
    * xTB (default diagonalisation with density mixing): orbital transformation with conjugate gradients, which
      minimises the energy at integer occupations -- the cure for the charge sloshing of (near-)degenerate
      states, e.g. an open-shell free atom, where smearing is impossible in xTB's minimal basis.
    """
    if method == 'xtb':
        section = _ot(eps_scf, max(int(max_scf), 200), 20, minimizer='CG')
        section['SCF_GUESS'] = 'RESTART'
        return section
    return {
        'SCF_GUESS': 'RESTART',
        'EPS_SCF': eps_scf,
        'MAX_SCF': max(int(max_scf), 200),
        'ADDED_MOS': max(10, electrons // 10),
        'SMEAR': {'_': 'ON', 'METHOD': 'FERMI_DIRAC', 'ELECTRONIC_TEMPERATURE': temperature},
        'MIXING': {'METHOD': 'BROYDEN_MIXING', 'ALPHA': 0.1, 'NBROYDEN': 8},
        'DIAGONALIZATION': {'_': 'ON', 'ALGORITHM': 'STANDARD'},
        'PRINT': {'RESTART': {'BACKUP_COPIES': 0}},
    }


def _scf_section(settings: Mapping, atoms: Atoms) -> dict:
    scf = settings['scf']
    if settings['method'] == 'xtb' and len(atoms) > 1:
        return {
            'SCF_GUESS': 'MOPAC',
            'EPS_SCF': scf['eps_scf'],
            'MAX_SCF': scf['max_scf'],
            'PRINT': {'RESTART': {'BACKUP_COPIES': 0}},
        }
    # DFT, and xTB free atoms: their degenerate open shells make density mixing oscillate forever
    minimizer = 'CG' if settings['method'] == 'xtb' else 'DIIS'
    return _ot(scf['eps_scf'], scf['max_scf'], scf['outer_max_scf'], minimizer)


def build_cp2k_parameters(atoms: Atoms, settings: Mapping, *, walltime_seconds: int | None = None) -> dict:
    """Return the CP2K input (aiida-cp2k dict) of an energy/forces(/stress) single point of ``atoms``.

    ``atoms.info`` carries ``config_type`` (``periodic`` or ``cluster``), ``charge`` and ``multiplicity``
    (validated by :func:`check_labelling_input`). The protocol's free-form ``cp2k`` section is merged last.
    """
    periodic = atoms.info.get('config_type', 'periodic' if atoms.pbc.all() else 'cluster') == 'periodic'
    charge = int(atoms.info.get('charge', 0))
    multiplicity = int(atoms.info.get('multiplicity', 1))
    dft: dict = {'CHARGE': charge, 'MULTIPLICITY': multiplicity, 'SCF': _scf_section(settings, atoms)}
    if multiplicity > 1 or settings.get('uks', False):
        dft['UKS'] = True
    subsys: dict = {'CELL': {'PERIODIC': 'XYZ' if periodic else 'NONE'}}
    if not periodic:
        edges = cluster_box(atoms, settings)
        subsys['CELL']['ABC'] = ' '.join(f'{edge:.3f}' for edge in edges)
        subsys['TOPOLOGY'] = {'CENTER_COORDINATES': {'_': '.TRUE.'}}

    if settings['method'] == 'xtb':
        dft['QS'] = {'METHOD': 'xTB', 'XTB': {'DO_EWALD': periodic, 'CHECK_ATOMIC_CHARGES': False}}
        if not periodic:
            dft['POISSON'] = {'PERIODIC': 'NONE', 'POISSON_SOLVER': 'ANALYTIC'}
    else:
        dft['BASIS_SET_FILE_NAME'] = list(settings['basis_set_files'])
        dft['POTENTIAL_FILE_NAME'] = settings['potential_file']
        dft['MGRID'] = {'CUTOFF': settings['cutoff'], 'REL_CUTOFF': settings['rel_cutoff']}
        dft['QS'] = {'EPS_DEFAULT': 1.0e-12}
        xc: dict = {'XC_FUNCTIONAL': {'_': settings['xc']}}
        if settings['dispersion']:
            xc['VDW_POTENTIAL'] = {
                'POTENTIAL_TYPE': 'PAIR_POTENTIAL',
                'PAIR_POTENTIAL': {
                    'TYPE': DISPERSIONS.get(settings['dispersion'].upper(), settings['dispersion']),
                    'PARAMETER_FILE_NAME': 'dftd3.dat',
                    'REFERENCE_FUNCTIONAL': settings['xc'],
                },
            }
        dft['XC'] = xc
        if not periodic:
            dft['POISSON'] = {'PERIODIC': 'NONE', 'POISSON_SOLVER': settings['cluster']['poisson_solver']}
        basis = settings['basis_set']
        subsys['KIND'] = [
            {
                '_': symbol,
                'BASIS_SET': basis.get(symbol, basis['default']),
                'POTENTIAL': settings['pseudopotential'],
            }
            for symbol in sorted(set(atoms.get_chemical_symbols()))
        ]

    force_eval: dict = {
        'METHOD': 'QS',
        'DFT': dft,
        'SUBSYS': subsys,
        'PRINT': {'FORCES': {'_': 'ON'}},
    }
    if periodic:
        force_eval['STRESS_TENSOR'] = settings['cell']['stress_tensor']
        force_eval['PRINT']['STRESS_TENSOR'] = {'_': 'ON'}
    glob: dict = {'RUN_TYPE': 'ENERGY_FORCE', 'PRINT_LEVEL': 'MEDIUM'}
    if walltime_seconds:
        glob['WALLTIME'] = int(walltime_seconds)
    parameters = {'GLOBAL': glob, 'FORCE_EVAL': force_eval}
    return merge_sections(parameters, settings.get('cp2k') or {})


def isolated_atom(symbol: str, settings: Mapping) -> Atoms:
    """Return the free atom ``symbol`` in its ground spin state, as a cluster ready for labelling."""
    atoms = Atoms(symbol, positions=[[0.0, 0.0, 0.0]], pbc=False)
    atoms.info.update(config_type='cluster', charge=0, multiplicity=atom_multiplicity(symbol))
    return atoms


def check_labelling_input(atoms: Atoms, settings: Mapping, name: str, data_dir: str | Path | None = None) -> Atoms:
    """Validate one structure against the protocol before anything is submitted; return the normalised copy.

    Refuses (with :class:`LabelInputError` naming ``name`` and the fix): a periodic structure without a cell,
    atoms closer than 0.5 Å, a charge/multiplicity that contradicts the electron count, an element without
    GFN1-xTB parameters, or (DFT) without the protocol's basis set or pseudopotential in CP2K's data files
    under ``data_dir`` (skipped when no data directory is known).
    """
    try:
        atoms = validate_configuration(atoms, name)
    except ConfigurationError as error:
        raise LabelInputError(str(error)) from None
    limit = MAX_LABEL_ATOMS.get(settings['method'])
    if limit is not None and len(atoms) > limit:
        raise LabelInputError(
            f'{name}: {len(atoms)} atoms is beyond what one {settings["method"]} single point can label here '
            f'(at most {limit}); label clusters cut from it (mofal clusters) or a smaller cell.'
        )
    if abs(int(atoms.info['charge'])) > len(atoms):
        raise LabelInputError(
            f'{name}: a charge of {atoms.info["charge"]} e on {len(atoms)} atoms is not chemistry; give the charge '
            'in units of e (usually between -(atoms) and +(atoms), most often small).'
        )
    symbols = sorted(set(atoms.get_chemical_symbols()))
    for symbol in symbols:  # the free-atom reference of every element is labelled too: refuse now, not then
        try:
            atom_multiplicity(symbol)
        except ValueError as error:
            raise LabelInputError(f'{name}: {error}') from None
    if settings['method'] == 'xtb':
        beyond = [symbol for symbol in symbols if Atoms(symbol).numbers[0] > XTB_MAX_Z]
        if beyond:
            raise LabelInputError(
                f'{name}: GFN1-xTB has no parameters for {", ".join(beyond)} (it covers H to Rn); '
                'use a DFT protocol (fast / moderate / precise).'
            )
        return atoms
    if data_dir is None:
        return atoms
    data_dir = Path(data_dir)
    basis_names: dict[str, set[str]] = {}
    for filename in settings['basis_set_files']:
        if (data_dir / filename).is_file():
            for element, found in available_names(str(data_dir / filename)).items():
                basis_names.setdefault(element, set()).update(found)
    potential_file = data_dir / settings['potential_file']
    potentials = available_names(str(potential_file)) if potential_file.is_file() else {}
    basis = settings['basis_set']
    for symbol in symbols:
        wanted = basis.get(symbol, basis['default'])
        if basis_names and wanted not in basis_names.get(symbol, ()):
            files = ', '.join(settings['basis_set_files'])
            raise LabelInputError(
                f'{name}: no basis set {wanted!r} for {symbol} in {files} ({data_dir}); '
                f"name one that exists with overrides={{'basis_set': {{'{symbol}': '...'}}}} "
                "or add its file to 'basis_set_files'."
            )
        if potentials and settings['pseudopotential'] not in potentials.get(symbol, ()):
            raise LabelInputError(
                f'{name}: no pseudopotential {settings["pseudopotential"]!r} for {symbol} in {potential_file}; '
                "set overrides={'pseudopotential': ...} or 'potential_file'."
            )
    return atoms
