"""ReaxFF MD baseline for ZIFs through aiida-lammps: builders from the MD protocol language, and a result collector.

The amorphous-ZIF paper compares its MLP against ReaxFF (Castel & Coudert, J. Phys. Chem. C 2022). This module
turns a settings dict of the MD protocol language (:mod:`aiida_mofal.md.protocol`; K, GPa, fs) into an
aiida-lammps calculation with ``units real``, ``atom_style charge``, ``pair_style reaxff`` and
``fix qeq/reaxff``, and turns what the calculation retrieved into the nodes our tools read: the final
structure, a ``mofal.trajectory`` node (frames and thermodynamics in eV, Å, GPa, fs, as the MACE MD engines
write them), the QEq charges and the integrity record of :mod:`aiida_mofal.analysis.integrity`.

Two routes, chosen by :func:`get_reaxff_builder` (``route='auto'``):

* ``base`` — aiida-lammps' ``LammpsBaseCalculation`` (``lammps.base``): one stage (a hold or one linear ramp of
  temperature and pressure), everything expressed in its ``parameters`` schema. aiida-lammps cannot put a ReaxFF
  control file next to the input, so its settings go on the ``pair_style`` line where LAMMPS has a keyword
  (``tabulate_long_range`` → ``tabulate``); ``nbrhood_cutoff``, ``hbond_cutoff``, ``bond_graph_cutoff`` and
  ``thb_cutoff`` have none and take LAMMPS' defaults. For the ZIF control file only ``hbond_cutoff`` differs
  (6.0 Å vs 7.5 Å); on ReaxFF-relaxed ZIF-4 energies and forces were identical to 1e-9 kcal/mol/Å with and
  without it (Zn(Im)2 has no N–H/O–H donors). The differences are listed in the builder's description.
* ``raw`` — aiida-lammps' ``LammpsRawCalculation`` (``lammps.raw``) with a script generated here: used when the
  schedule has several stages (e.g. the melt-quench of SCIENCE.md §7), when a minimisation precedes the MD, or
  when ``route='raw'`` is asked for. The control file is used verbatim. aiida-lammps' raw parser returns only run
  statistics, so :func:`collect_reaxff_md` parses the retrieved dump and log itself. Each stage is its own
  ``run`` with its own integrator fix, so thermostat/barostat chain variables restart at stage boundaries and
  ``econserve`` is continuous only within a stage.

Both routes write the same trajectory columns and thermo columns, so one collector serves both.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from aiida.plugins import CalculationFactory, DataFactory

from aiida_mofal.md.protocol import load_md_settings, total_steps, validate_md_settings
from aiida_mofal.md.units import atm_to_gpa, gpa_to_atm, kcal_per_mol_to_ev

__all__ = [
    'CONTROL_DEFAULTS',
    'collect_reaxff_md',
    'control_keywords',
    'get_control_file',
    'get_force_field',
    'get_reaxff_builder',
    'get_reaxff_minimize_builder',
    'reaxff_script',
    'reaxff_species',
    'write_reaxff_inputs',
]

#: LAMMPS' defaults for the ReaxFF control-file settings (``pair_style reaxff NULL``).
CONTROL_DEFAULTS = {'nbrhood_cutoff': 5.0, 'hbond_cutoff': 7.5, 'bond_graph_cutoff': 0.3, 'thb_cutoff': 0.001}
#: Control-file settings that LAMMPS also accepts as ``pair_style reaxff`` keywords.
_CONTROL_AS_KEYWORD = {'tabulate_long_range': 'tabulate'}
#: Settings of the control file that LAMMPS' REAXFF package ignores (output of the old stand-alone code).
_CONTROL_IGNORED = {
    'simulation_name',
    'energy_update_freq',
    'write_freq',
    'traj_title',
    'atom_info',
    'atom_forces',
    'atom_velocities',
    'bond_info',
    'angle_info',
}
#: ``fix qeq/reaxff`` arguments: every step, taper 0–10 Å, tolerance 1e-6, parameters from the force field.
QEQ_ARGUMENTS = [1, 0.0, 10.0, 1.0e-6, 'reaxff']
#: Thermo columns written by both routes (LAMMPS ``real`` units: kcal/mol, atm, fs).
THERMO_COLUMNS = [
    'step',
    'time',
    'temp',
    'pe',
    'ke',
    'etotal',
    'econserve',
    'press',
    'vol',
    'pxx',
    'pyy',
    'pzz',
    'pxy',
    'pxz',
    'pyz',
]

FORCE_FIELD_FILENAME = 'ffield.reax'
CONTROL_FILENAME = 'control.reax'
STRUCTURE_FILENAME = 'structure.dat'
DUMP_FILENAME = 'trajectory.dump'
FINAL_DUMP_FILENAME = 'final.dump'
BASE_DUMP_FILENAME = 'aiida_lammps.trajectory.dump'
OUTPUT_FILENAME = 'lammps.out'
#: Printed by the generated script where the MD begins: thermo lines before it (a minimisation) are not MD.
MD_START_MARKER = 'mofal: MD starts'


# ----------------------------------------------------------------------------------------------------------
# force field and control file


def reaxff_species(force_field_text: str) -> list[str]:
    """Return the element symbols a ReaxFF parameter file defines (its atom block), in file order."""
    from ase.data import chemical_symbols

    lines = force_field_text.splitlines()
    n_general = int(lines[1].split()[0])
    header = 2 + n_general
    n_atoms = int(lines[header].split()[0])
    species = []
    line = header + 4  # three more header lines follow the count line
    for _ in range(n_atoms):
        symbol = lines[line].split()[0]
        if symbol in chemical_symbols[1:]:
            species.append(symbol)
        line += 4  # four lines per element
    if not species:
        raise ValueError('no element found in the atom block of the ReaxFF file; is it a LAMMPS ffield file?')
    return species


def get_force_field(source: str | Path, extra_tags: Mapping[str, Any] | None = None):
    """Return a ``LammpsPotentialData`` (``pair_style reaxff``) for a ReaxFF file, reusing a stored identical one.

    :param source: path of the ``ffield`` file.
    :param extra_tags: KIM-style tags (``title``, ``source_citations``, ...) stored with the potential.
    """
    LammpsPotentialData = DataFactory('lammps.potential')  # noqa: N806
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f'ReaxFF file {path} does not exist; pass the path of an ffield file.')
    species = reaxff_species(path.read_text())
    return LammpsPotentialData.get_or_create(
        source=path,
        pair_style='reaxff',
        species=species,
        atom_style='charge',
        units='real',
        extra_tags=dict(extra_tags or {}),
    )


def get_control_file(source: str | Path) -> orm.SinglefileData:
    """Return the ReaxFF control file as a ``SinglefileData`` (checked to be parseable)."""
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f'ReaxFF control file {path} does not exist.')
    _parse_control(path.read_text())
    return orm.SinglefileData(path, filename=CONTROL_FILENAME)


def _parse_control(text: str) -> dict[str, float | str]:
    values: dict[str, float | str] = {}
    for raw in text.splitlines():
        line = raw.split('!')[0].split('#')[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(f'cannot read the ReaxFF control line {raw!r}: expected "keyword value"')
        try:
            values[parts[0]] = float(parts[1])
        except ValueError:
            values[parts[0]] = parts[1]
    return values


def control_keywords(control_text: str | None) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """Translate a control file to ``pair_style reaxff NULL`` keywords.

    :returns: the ``pair_style`` options (starting with ``NULL``) and the settings that no keyword can carry and
        that differ from LAMMPS' defaults, as ``{name: (file value, LAMMPS default)}``.
    """
    options = ['NULL']
    lost: dict[str, tuple[float, float]] = {}
    if not control_text:
        return options, lost
    for key, value in _parse_control(control_text).items():
        if key in _CONTROL_AS_KEYWORD:
            options += [_CONTROL_AS_KEYWORD[key], str(int(value))]
        elif key in CONTROL_DEFAULTS:
            if not math.isclose(float(value), CONTROL_DEFAULTS[key]):
                lost[key] = (float(value), CONTROL_DEFAULTS[key])
        elif key not in _CONTROL_IGNORED:
            raise ValueError(f'unknown ReaxFF control setting {key!r}; LAMMPS would refuse it.')
    return options, lost


# ----------------------------------------------------------------------------------------------------------
# settings -> LAMMPS


def _settings(protocol: str | Mapping[str, Any] | None, overrides: Mapping[str, Any] | None) -> dict:
    if protocol is None or isinstance(protocol, str):
        return load_md_settings(protocol, overrides)
    merged = dict(protocol)
    merged.update(overrides or {})
    return validate_md_settings(merged)


def _initial_temperature(settings: Mapping[str, Any]) -> float:
    if settings['initial_temperature'] is not None:
        return float(settings['initial_temperature'])
    temperature = settings['schedule'][0]['temperature']
    return float(temperature[0]) if temperature else 0.0


def _lammps_seed(settings: Mapping[str, Any], offset: int = 0) -> int:
    """LAMMPS wants seeds > 0; the protocol allows 0."""
    return int(settings['seed']) + 1 + offset


def _pressure_keyword(settings: Mapping[str, Any]) -> str:
    return {'isotropic': 'iso', 'anisotropic': 'aniso', 'triclinic': 'tri'}[settings['barostat']]


def _stage_fixes(settings: Mapping[str, Any], stage: Mapping[str, Any], index: int) -> list[tuple[str, list]]:
    """Return the integrator (and Langevin) fixes of a stage, ``[(style, arguments)]``, in LAMMPS ``real`` units."""
    ensemble, thermostat = settings['ensemble'], settings['thermostat']
    t_damp, p_damp = settings['temperature_damping'], settings['pressure_damping']
    temperature = stage['temperature']
    fixes: list[tuple[str, list]] = []
    barostat: list = []
    if ensemble == 'npt':
        p0, p1 = (gpa_to_atm(p) for p in stage['pressure'])
        barostat = [_pressure_keyword(settings), p0, p1, p_damp]
    if ensemble == 'nve':
        fixes.append(('nve', []))
    elif thermostat == 'nose-hoover':
        style = 'npt' if ensemble == 'npt' else 'nvt'
        fixes.append((style, ['temp', temperature[0], temperature[1], t_damp, *barostat]))
    else:  # langevin: NVE or NPH integrator + Langevin forces
        fixes.append(('nph', barostat) if ensemble == 'npt' else ('nve', []))
        fixes.append(('langevin', [temperature[0], temperature[1], t_damp, _lammps_seed(settings, 1000 + index)]))
    return fixes


def _kind_order(structure: orm.StructureData) -> list[str]:
    """Element of every LAMMPS atom type, in aiida-lammps' numbering (kinds in order of first appearance)."""
    order: list[str] = []
    for site in structure.sites:
        if site.kind_name not in order:
            order.append(site.kind_name)
    return [structure.get_kind(name).symbol for name in order]


def _check_kind_order(structure: orm.StructureData) -> None:
    """Refuse kinds out of first-appearance order: aiida-lammps numbers types one way and names them the other."""
    if [kind.symbol for kind in structure.kinds] != _kind_order(structure):
        raise ValueError(
            'the kinds of this StructureData are not in the order in which they first appear among the sites, '
            'so aiida-lammps would give atom types the wrong elements; rebuild it, e.g. '
            'StructureData(ase=structure.get_ase()).'
        )


def _check_periodic(structure: orm.StructureData) -> None:
    if not all(structure.pbc):
        raise ValueError(
            f'ReaxFF MD here runs periodic cells (boundary p p p), but the structure has pbc={structure.pbc}; '
            'give it a cell and periodic boundaries (a molecule: put it in a box with vacuum).'
        )


def _check_elements(structure: orm.StructureData, species: list[str]) -> None:
    missing = sorted(set(structure.get_symbols_set()) - set(species))
    if missing:
        raise ValueError(
            f'the ReaxFF force field has no parameters for {missing} (it covers {species}); '
            'choose a force field for these elements.'
        )


def reaxff_script(
    settings: Mapping[str, Any] | None,
    elements: list[str],
    minimize: Mapping[str, Any] | None = None,
    qeq: list | None = None,
    control: bool = True,
) -> str:
    """Return a LAMMPS input script running the whole MD schedule with ReaxFF + QEq (the ``raw`` route).

    ``elements`` maps atom types 1..n to elements (the type order of the data file). Frames go to
    ``trajectory.dump`` (``id type element x y z fx fy fz q``) every ``dump_every`` steps from step 0, the
    last step to ``final.dump``; thermo columns :data:`THERMO_COLUMNS` every ``thermo_every`` steps.
    With ``settings=None`` the script only minimises (``minimize`` is then required) and dumps the result.
    ``control=False`` runs without a control file (``pair_style reaxff NULL``, LAMMPS' defaults).
    """
    if settings is None and not minimize:
        raise ValueError('a ReaxFF script needs MD settings, a minimisation, or both')
    qeq = list(qeq or QEQ_ARGUMENTS)
    species = ' '.join(elements)
    lines = [
        '# ReaxFF MD generated by aiida-mofal (workchains/reaxff.py) from the MD protocol language',
        'units real',
        'atom_style charge',
        'boundary p p p',
        f'read_data {STRUCTURE_FILENAME}',
        f'pair_style reaxff {CONTROL_FILENAME if control else "NULL"}',
        f'pair_coeff * * {FORCE_FIELD_FILENAME} {species}',
        'neighbor 2.0 bin',
        'neigh_modify every 1 delay 0 check yes',
        f'fix qeq all qeq/reaxff {" ".join(str(v) for v in qeq)}',
    ]
    if minimize:
        lines += [
            # the MD's thermo columns: aiida-lammps' raw parser fails on thermo blocks of different widths
            f'thermo_style custom {" ".join(THERMO_COLUMNS)}',
            f'thermo {int(minimize.get("thermo_every", 10))}',
            f'min_style {minimize.get("style", "cg")}',
            'minimize {} {} {} {}'.format(
                minimize.get('energy_tolerance', 1.0e-6),
                minimize.get('force_tolerance', 1.0e-2),
                int(minimize.get('max_iterations', 200)),
                int(minimize.get('max_evaluations', 2000)),
            ),
            'reset_timestep 0',
        ]
    final_dump = (
        f'write_dump all custom {FINAL_DUMP_FILENAME} id type element x y z fx fy fz q '
        f'modify sort id element {species} format float %.10g'
    )
    if settings is None:
        return '\n'.join([*lines, final_dump, ''])
    settings = validate_md_settings(settings)
    lines += [
        f'print "{MD_START_MARKER}"',
        f'thermo_style custom {" ".join(THERMO_COLUMNS)}',
        'thermo_modify norm no flush yes',
        f'thermo {settings["thermo_every"]}',
    ]
    start_temperature = _initial_temperature(settings)
    if start_temperature > 0:
        lines.append(f'velocity all create {start_temperature} {_lammps_seed(settings)} dist gaussian mom yes rot yes')
    lines += [
        f'dump frames all custom {settings["dump_every"]} {DUMP_FILENAME} id type element x y z fx fy fz q',
        f'dump_modify frames sort id element {species} format float %.10g',
    ]
    for index, stage in enumerate(settings['schedule']):
        lines.append(f'# stage {index}: {stage}')
        lines.append(f'timestep {stage["timestep"]}')
        names = []
        for number, (style, arguments) in enumerate(_stage_fixes(settings, stage, index)):
            name = f'stage{index}_{number}'
            names.append(name)
            lines.append(f'fix {name} all {style} {" ".join(str(a) for a in arguments)}'.rstrip())
        lines.append(f'run {stage["steps"]}')
        lines += [f'unfix {name}' for name in names]
    return '\n'.join([*lines, final_dump, ''])


def _base_parameters(settings: Mapping[str, Any], pair_style_options: list[str], qeq: list) -> dict:
    """``LammpsBaseCalculation`` parameters for a one-stage schedule."""
    (stage,) = settings['schedule']
    fixes = _stage_fixes(settings, stage, 0)
    style, arguments = fixes[0]
    constraints: dict[str, Any] = {}
    for keyword in ('temp', 'iso', 'aniso', 'tri'):
        if keyword in arguments:
            position = arguments.index(keyword)
            constraints[keyword] = arguments[position + 1 : position + 4]
    fix_block: dict[str, list] = {'qeq/reaxff': [{'group': 'all', 'type': qeq}]}
    for extra_style, extra_arguments in fixes[1:]:
        fix_block[extra_style] = [{'group': 'all', 'type': extra_arguments}]
    md: dict[str, Any] = {
        'integration': {'style': style, 'constraints': constraints},
        'max_number_steps': int(stage['steps']),
    }
    start_temperature = _initial_temperature(settings)
    if start_temperature > 0:
        md['velocity'] = [
            {
                'create': {'temp': start_temperature, 'seed': _lammps_seed(settings)},
                'dist': 'gaussian',
                'mom': 'yes',
                'rot': 'yes',
            }
        ]
    return {
        'control': {'units': 'real', 'timestep': float(stage['timestep']), 'newton': 'on'},
        'structure': {'atom_style': 'charge'},
        'potential': {'potential_style_options': pair_style_options},
        'fix': fix_block,
        'compute': {'property/atom': [{'group': 'all', 'type': ['fx', 'fy', 'fz']}]},
        'thermo': {
            'printing_rate': int(settings['thermo_every']),
            'thermo_printing': {column: True for column in THERMO_COLUMNS},
        },
        'dump': {'dump_rate': int(settings['dump_every'])},
        'md': md,
    }


@calcfunction
def write_reaxff_inputs(structure: orm.StructureData, parameters: orm.Dict) -> dict:
    """Write the LAMMPS data file and the generated script of the ``raw`` route (kept in the provenance graph)."""
    from aiida_lammps.parsers.utils import generate_lammps_structure

    params = parameters.get_dict()
    content, _ = generate_lammps_structure(structure, 'charge')
    script = reaxff_script(
        params['md'], params['elements'], params.get('minimize'), params.get('qeq'), params.get('control', True)
    )
    return {
        'script': orm.SinglefileData(io.BytesIO(script.encode()), filename='input.in'),
        'data': orm.SinglefileData(io.BytesIO(content.encode()), filename=STRUCTURE_FILENAME),
    }


def _raw_builder(structure: orm.StructureData, parameters: dict, force_field, control: orm.SinglefileData | None):
    LammpsRawCalculation = CalculationFactory('lammps.raw')  # noqa: N806
    builder = LammpsRawCalculation.get_builder()
    inputs = write_reaxff_inputs(structure, orm.Dict({**parameters, 'control': control is not None}))
    builder.script = inputs['script']
    files = {'structure': inputs['data'], 'force_field': force_field}
    filenames = {'structure': STRUCTURE_FILENAME, 'force_field': FORCE_FIELD_FILENAME}
    if control is not None:
        files['control'] = control
        filenames['control'] = CONTROL_FILENAME
    builder.files = files
    builder.filenames = orm.Dict(filenames)
    retrieve = [FINAL_DUMP_FILENAME] if parameters['md'] is None else [DUMP_FILENAME, FINAL_DUMP_FILENAME]
    builder.settings = orm.Dict({'additional_retrieve_list': retrieve})
    return builder


def get_reaxff_builder(
    code: orm.AbstractCode,
    structure: orm.StructureData,
    protocol: str | Mapping[str, Any] | None = 'nvt',
    overrides: Mapping[str, Any] | None = None,
    *,
    force_field,
    control: orm.SinglefileData | None = None,
    minimize: Mapping[str, Any] | None = None,
    route: str = 'auto',
    options: Mapping[str, Any] | None = None,
    qeq: list | None = None,
):
    """Return a builder for a ReaxFF MD run of ``structure`` following an MD protocol.

    :param code: a LAMMPS code with the REAXFF and QEQ packages (``lammps@localhost``).
    :param protocol: the name of a protocol in ``protocols/md.yaml`` (``explore``, ``nvt``, ``melt_quench``, ...)
        or a settings dict of the MD protocol language.
    :param overrides: top-level settings replacing those of the protocol (unknown keys are refused).
    :param force_field: the ReaxFF ``LammpsPotentialData`` (:func:`get_force_field`).
    :param control: the ReaxFF control file (:func:`get_control_file`); None uses LAMMPS' defaults.
    :param minimize: run a LAMMPS minimisation before the MD (``energy_tolerance``, ``force_tolerance``,
        ``max_iterations``, ``max_evaluations``, ``style``): forces the ``raw`` route.
    :param route: ``auto`` (``base`` when aiida-lammps can express the run, else ``raw``), ``base`` or ``raw``.
    :param options: ``metadata.options`` (resources, walltime, ...).
    :param qeq: the ``fix qeq/reaxff`` arguments (default :data:`QEQ_ARGUMENTS`).
    :returns: a ``ProcessBuilder`` of ``lammps.base`` or ``lammps.raw``; ``builder.metadata.description`` says
        which and why. Give :func:`collect_reaxff_md` the same settings (``load_md_settings(protocol, overrides)``)
        so that it applies the protocol's integrity policy.
    """
    if route not in ('auto', 'base', 'raw'):
        raise ValueError(f"route must be 'auto', 'base' or 'raw', got {route!r}")
    settings = _settings(protocol, overrides)
    species = force_field.base.attributes.get('species', None) or reaxff_species(force_field.get_content())
    _check_elements(structure, species)
    _check_periodic(structure)
    qeq = list(qeq or QEQ_ARGUMENTS)
    control_text = control.get_content() if control is not None else None
    pair_style_options, lost = control_keywords(control_text)
    multi_stage = len(settings['schedule']) > 1
    needs_raw = multi_stage or minimize is not None
    if route == 'base' and needs_raw:
        why = 'several schedule stages' if multi_stage else 'a minimisation before the MD'
        raise ValueError(
            f"aiida-lammps' LammpsBaseCalculation runs one integrator for one run and cannot express {why}; "
            "use route='raw' (or 'auto')."
        )
    use_raw = route == 'raw' or (route == 'auto' and needs_raw)
    steps = total_steps(settings)
    resources = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
    all_options = {'resources': resources, 'withmpi': False, **dict(options or {})}

    if use_raw:
        parameters = {'md': settings, 'elements': _kind_order(structure), 'minimize': minimize, 'qeq': qeq}
        builder = _raw_builder(structure, parameters, force_field, control)
        why = 'several stages' if multi_stage else 'minimisation first' if minimize is not None else 'asked for'
        description = (
            f'ReaxFF MD (raw route, {why}: generated script), {len(settings["schedule"])} stage(s), {steps} steps'
        )
    else:
        if lost:
            warnings.warn(
                'LammpsBaseCalculation cannot ship the ReaxFF control file; these settings take LAMMPS defaults: '
                + ', '.join(f'{k} {v[0]} -> {v[1]}' for k, v in lost.items())
                + ". Use route='raw' to apply them.",
                stacklevel=2,
            )
        _check_kind_order(structure)
        LammpsBaseCalculation = CalculationFactory('lammps.base')  # noqa: N806
        builder = LammpsBaseCalculation.get_builder()
        builder.structure = structure
        builder.potential = force_field
        builder.parameters = orm.Dict(_base_parameters(settings, pair_style_options, qeq))
        description = f'ReaxFF MD (base route: lammps.base), {steps} steps'
        if lost:
            description += '; control settings at LAMMPS defaults: ' + ', '.join(lost)
    builder.code = code
    builder.metadata.options = all_options
    builder.metadata.description = description
    return builder


def get_reaxff_minimize_builder(
    code: orm.AbstractCode,
    structure: orm.StructureData,
    *,
    force_field,
    control: orm.SinglefileData | None = None,
    energy_tolerance: float = 1.0e-6,
    force_tolerance: float = 1.0e-2,
    max_iterations: int = 200,
    options: Mapping[str, Any] | None = None,
    qeq: list | None = None,
):
    """Return a builder that minimises ``structure`` with ReaxFF + QEq at fixed cell (the ``raw`` route).

    aiida-lammps' base calculation refuses ``fix qeq/reaxff`` in a minimisation (its schema allows only a
    few fixes there), so this uses a generated script; :func:`collect_reaxff_md` turns its ``retrieved`` into
    the relaxed ``structure`` (tolerances in kcal/mol and kcal/mol/Å, LAMMPS ``real`` units). Crystal
    structures from experiment or DFT are far from the ReaxFF minimum (ZIF-4: ~0.2 eV/atom above it), so MD
    started from them heats up by hundreds of kelvin.
    """
    species = force_field.base.attributes.get('species', None) or reaxff_species(force_field.get_content())
    _check_elements(structure, species)
    _check_periodic(structure)
    minimize = {
        'energy_tolerance': energy_tolerance,
        'force_tolerance': force_tolerance,
        'max_iterations': int(max_iterations),
        'max_evaluations': int(10 * max_iterations),
    }
    parameters = {
        'md': None,
        'elements': _kind_order(structure),
        'minimize': minimize,
        'qeq': list(qeq or QEQ_ARGUMENTS),
    }
    builder = _raw_builder(structure, parameters, force_field, control)
    builder.code = code
    builder.metadata.options = {
        'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1},
        'withmpi': False,
        **dict(options or {}),
    }
    builder.metadata.description = f'ReaxFF minimisation (raw route), at most {max_iterations} iterations'
    return builder


# ----------------------------------------------------------------------------------------------------------
# results


def _read_dump(text: str) -> list[dict]:
    """Frames of a LAMMPS custom dump: step, cell (rows), origin, and the per-atom columns (sorted by id)."""
    frames = []
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        if not lines[k].startswith('ITEM: TIMESTEP'):
            k += 1
            continue
        if k + 9 > len(lines):
            break  # a frame cut by a crash or a kill: keep the complete ones
        step = int(lines[k + 1])
        n_atoms = int(lines[k + 3])
        if k + 9 + n_atoms > len(lines):
            break
        bounds = np.array([line.split() for line in lines[k + 5 : k + 8]], dtype=float)
        if bounds.shape[1] == 2:
            bounds = np.hstack([bounds, np.zeros((3, 1))])
        xy, xz, yz = bounds[0, 2], bounds[1, 2], bounds[2, 2]
        xlo = bounds[0, 0] - min(0.0, xy, xz, xy + xz)
        xhi = bounds[0, 1] - max(0.0, xy, xz, xy + xz)
        ylo = bounds[1, 0] - min(0.0, yz)
        yhi = bounds[1, 1] - max(0.0, yz)
        zlo, zhi = bounds[2, 0], bounds[2, 1]
        cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])
        columns = lines[k + 8].split()[2:]
        rows = [line.split() for line in lines[k + 9 : k + 9 + n_atoms]]
        if any(len(row) != len(columns) for row in rows):
            break
        table = np.array(rows, dtype=object)
        fields = {name: table[:, c] for c, name in enumerate(columns)}
        order = np.argsort(fields['id'].astype(int))
        frames.append(
            {
                'step': step,
                'cell': cell,
                'origin': np.array([xlo, ylo, zlo]),
                'fields': {name: values[order] for name, values in fields.items()},
            }
        )
        k += 9 + n_atoms
    return frames


def _read_thermo(text: str) -> dict[str, np.ndarray]:
    """Thermo blocks of a LAMMPS log whose header has every column of :data:`THERMO_COLUMNS` (first copy of a step)."""
    wanted = [column.lower() for column in THERMO_COLUMNS]
    names = {'pe': 'poteng', 'ke': 'kineng', 'etotal': 'toteng', 'vol': 'volume'}
    rows: dict[int, list[float]] = {}
    header: list[str] | None = None
    lines = text.splitlines()
    if MD_START_MARKER in lines:
        lines = lines[len(lines) - lines[::-1].index(MD_START_MARKER) :]
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == 'Step':
            lowered = [p.lower() for p in parts]
            header = lowered if all(names.get(w, w) in lowered for w in wanted) else None
            continue
        if parts[0] == 'Loop':  # 'Loop time of ...' ends a thermo block
            header = None
        if header is None or len(parts) != len(header):
            continue  # warnings and other lines inside a block
        try:
            values = [float(p) for p in parts]
        except ValueError:
            continue
        rows.setdefault(int(values[0]), [values[header.index(names.get(w, w))] for w in wanted])
    if not rows:
        return {}
    table = np.array([rows[s] for s in sorted(rows)])
    return {column: table[:, c] for c, column in enumerate(THERMO_COLUMNS)}


def _input_frame_rotation(structure: orm.StructureData, first_cell: np.ndarray) -> np.ndarray:
    """Rotation ``R`` with ``lammps_cell = input_cell @ R``: aiida-lammps rotates cells to LAMMPS' convention."""
    rotation = np.linalg.solve(np.array(structure.cell), first_cell)
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4):
        raise ValueError('the first frame does not belong to the input structure (its cell is not a rotation of it)')
    return rotation


def _voigt_to_matrix(voigt: np.ndarray) -> np.ndarray:
    xx, yy, zz, yz, xz, xy = np.moveaxis(voigt, -1, 0)
    return np.stack([np.stack([xx, xy, xz], -1), np.stack([xy, yy, yz], -1), np.stack([xz, yz, zz], -1)], -2)


def _matrix_to_voigt(matrix: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            matrix[..., 0, 0],
            matrix[..., 1, 1],
            matrix[..., 2, 2],
            matrix[..., 1, 2],
            matrix[..., 0, 2],
            matrix[..., 0, 1],
        ],
        -1,
    )


@calcfunction
def collect_reaxff_md(
    retrieved: orm.FolderData, structure: orm.StructureData, settings: orm.Dict | None = None
) -> dict:
    """Turn what a ReaxFF run (either route) retrieved into our nodes, in eV, Å, GPa, fs, K, in the input's frame.

    Outputs:

    * ``structure``: the last frame;
    * ``trajectory``: a ``mofal.trajectory`` node (:class:`~aiida_mofal.data.trajectory.MdTrajectoryData`, engine
      ``lammps-reaxff``) with the frames (steps, times, positions, cells, potential energies, forces) and, for MD,
      the thermodynamics (temperature K, pressure GPa, volume Å^3, potential/kinetic/total/conserved energy eV,
      pressure tensor GPa, and the protocol's targets when ``settings`` are given) — what the MACE MD engines
      produce, so the same tools read both;
    * ``charges``: the QEq charges of every frame (``ArrayData`` ``steps``, ``charges`` in e);
    * ``integrity`` (MD only): the record of :func:`aiida_mofal.analysis.integrity.bond_changes` against the first
      frame, with ``failed``/``failure_reason`` from the protocol's ``fail_on_broken_bonds``.

    A minimisation (no MD dump) gives ``structure``, a one-frame ``trajectory`` and ``charges``.
    """
    from ase import Atoms

    from aiida_mofal.analysis.integrity import bond_changes, failure_reason
    from aiida_mofal.data.trajectory import MdTrajectoryData
    from aiida_mofal.md.protocol import elapsed_time, targets_at

    names = retrieved.base.repository.list_object_names()
    dump_name = DUMP_FILENAME if DUMP_FILENAME in names else BASE_DUMP_FILENAME
    md_run = dump_name in names
    frames = _read_dump(retrieved.base.repository.get_object_content(dump_name)) if md_run else []
    if FINAL_DUMP_FILENAME in names:
        final = _read_dump(retrieved.base.repository.get_object_content(FINAL_DUMP_FILENAME))
        if final and (not frames or final[-1]['step'] != frames[-1]['step']):
            frames.append(final[-1])
    if not frames:
        raise ValueError(f'no complete frame in {dump_name}: did LAMMPS run at all? See {OUTPUT_FILENAME}.')
    rotation = _input_frame_rotation(structure, frames[0]['cell'])

    def column_block(fields: dict, candidates: list[list[str]]) -> np.ndarray:
        for triple in candidates:
            if all(name in fields for name in triple):
                return np.stack([fields[name].astype(float) for name in triple], axis=-1)
        raise KeyError(f'none of the columns {candidates} in the dump')

    force_columns = [['fx', 'fy', 'fz'], [f'c_property_atom_all_aiida[{k}]' for k in (1, 2, 3)]]
    positions = np.array([(column_block(f['fields'], [['x', 'y', 'z']]) - f['origin']) @ rotation.T for f in frames])
    cells = np.array([f['cell'] @ rotation.T for f in frames])
    forces = kcal_per_mol_to_ev(np.array([column_block(f['fields'], force_columns) for f in frames]) @ rotation.T)
    charges = np.array([f['fields']['q'].astype(float) for f in frames])
    steps = np.array([f['step'] for f in frames], dtype=int)
    symbols = list(frames[0]['fields']['element'])
    atoms = structure.get_ase()
    if symbols != list(atoms.get_chemical_symbols()):
        raise ValueError('the dump lists other elements than the input structure, in order: not this run?')
    md_settings = validate_md_settings(settings.get_dict()) if settings is not None else None

    out_structure = structure.clone()
    out_structure.reset_cell(cells[-1].tolist())
    out_structure.reset_sites_positions(positions[-1].tolist())
    charges_node = orm.ArrayData()
    charges_node.set_array('steps', steps)
    charges_node.set_array('charges', charges)
    charges_node.base.attributes.set('units', 'e (QEq, fix qeq/reaxff)')

    frame_arrays: dict[str, np.ndarray] = {'steps': steps, 'positions': positions, 'cells': cells, 'forces': forces}
    thermo_arrays: dict[str, np.ndarray] = {}
    if md_run:
        thermo = _read_thermo(retrieved.base.repository.get_object_content(OUTPUT_FILENAME))
        if not thermo:
            raise ValueError(f'no thermo output with the columns {THERMO_COLUMNS} in {OUTPUT_FILENAME}')
        tensor = _voigt_to_matrix(np.stack([thermo[k] for k in ('pxx', 'pyy', 'pzz', 'pyz', 'pxz', 'pxy')], -1))
        thermo_arrays = {
            'step': thermo['step'],
            'time': thermo['time'],
            'temperature': thermo['temp'],
            'pressure': atm_to_gpa(thermo['press']),
            'volume': thermo['vol'],
            'potential_energy': kcal_per_mol_to_ev(thermo['pe']),
            'kinetic_energy': kcal_per_mol_to_ev(thermo['ke']),
            'total_energy': kcal_per_mol_to_ev(thermo['etotal']),
            'conserved_energy': kcal_per_mol_to_ev(thermo['econserve']),
            # LAMMPS sign (positive = compressed), rotated back into the input's frame
            'pressure_tensor': atm_to_gpa(_matrix_to_voigt(rotation @ tensor @ rotation.T)),
        }
        if md_settings is not None:
            targets = [targets_at(md_settings, int(step)) for step in thermo['step']]
            thermo_arrays['target_temperature'] = np.array([np.nan if t is None else t for t, _ in targets])
            thermo_arrays['target_pressure'] = np.array([np.nan if p is None else p for _, p in targets])
        row = {int(step): k for k, step in enumerate(thermo['step'])}
        if all(int(step) in row for step in steps):  # frame energies where the thermo output has the frame's step
            frame_arrays['energies'] = thermo_arrays['potential_energy'][[row[int(step)] for step in steps]]
        if md_settings is not None:
            frame_arrays['times'] = np.array([elapsed_time(md_settings, int(step)) for step in steps])
        elif all(int(step) in row for step in steps):
            frame_arrays['times'] = thermo_arrays['time'][[row[int(step)] for step in steps]]
    trajectory = MdTrajectoryData(
        frame_arrays,
        thermo_arrays,
        numbers=atoms.numbers,
        pbc=atoms.pbc,
        engine='lammps-reaxff',
        ensemble=md_settings['ensemble'] if md_settings else ('minimize' if not md_run else ''),
        timestep=md_settings['timestep'] if md_settings else None,
        extra_attributes={'potential': 'ReaxFF (pair_style reaxff + fix qeq/reaxff), LAMMPS units real'},
    )
    outputs = {'structure': out_structure, 'trajectory': trajectory, 'charges': charges_node}
    if not md_run:
        return outputs

    reference = Atoms(symbols=symbols, positions=positions[0], cell=cells[0], pbc=structure.pbc)
    record = bond_changes(reference, positions, cells)
    fail_on_broken = bool(md_settings and md_settings.get('fail_on_broken_bonds'))
    reason = failure_reason(record) if fail_on_broken else None
    record['steps'] = steps.tolist()
    record['failed'] = reason is not None
    record['failure_reason'] = reason
    outputs['integrity'] = orm.Dict(record)
    return outputs
