"""ReaxFF leaves: the force-field and control-file nodes, and the checks and inputs of a ``lammps-reaxff`` job.

ReaxFF MD runs as the ``lammps-reaxff`` engine of :class:`~aiida_mofal.calculations.md.MdCalculation` (the same
driver, parser and trajectory node as MACE MD; see ``docs/guide/reaxff.md`` for why not aiida-lammps). This module
holds what that engine adds: the ``ffield`` and control file as ``SinglefileData`` (an identical stored file is
reused), the checks before submission (species of the force field, control file, QEq/minimisation parameters), and
the engine's part of the job configuration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from aiida import orm

from aiida_mofal.md.reaxff import (
    CONTROL_FILENAME,
    FORCE_FIELD_FILENAME,
    force_field_species,
    parse_control,
    validate_reaxff_parameters,
)

__all__ = ['check_reaxff_inputs', 'control_file', 'force_field', 'reaxff_config']


def _file_node(source: str | Path, filename: str, check) -> orm.SinglefileData:
    """Return a ``SinglefileData`` of ``source`` (checked by ``check``), or the stored node with the same content."""
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f'{path} does not exist; pass the path of a ReaxFF {filename} file.')
    check(path.read_text())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    filters = {'attributes.sha256': digest, 'attributes.filename': filename}
    stored = orm.QueryBuilder().append(orm.SinglefileData, filters=filters).first(flat=True)
    if stored is not None:
        return stored
    node = orm.SinglefileData(path, filename=filename)
    node.base.attributes.set('sha256', digest)
    return node


def force_field(source: str | Path) -> orm.SinglefileData:
    """Return the ReaxFF parameter file (LAMMPS ``ffield``) as a node; its species are checked readable."""
    return _file_node(source, FORCE_FIELD_FILENAME, force_field_species)


def control_file(source: str | Path) -> orm.SinglefileData:
    """Return the ReaxFF control file as a node; every setting is checked to be one LAMMPS accepts."""
    return _file_node(source, CONTROL_FILENAME, parse_control)


def check_reaxff_inputs(inputs: Mapping, walks: list[dict]) -> dict:
    """Refuse a ``lammps-reaxff`` job that cannot run; return the validated ReaxFF parameters.

    :raises ValueError: naming the problem and the fix (no force field, a MACE model given, elements without
        parameters, a bad control file or parameter, a walk without settings and no minimisation).
    """
    if 'force_field' not in inputs:
        raise ValueError('engine lammps-reaxff needs input `force_field` (aiida_mofal.calculations.reaxff.force_field)')
    if 'model' in inputs:
        raise ValueError('engine lammps-reaxff takes no MACE `model`: the force field gives the energies')
    species = force_field_species(inputs['force_field'].get_content())
    if 'control' in inputs:
        parse_control(inputs['control'].get_content())
    parameters = validate_reaxff_parameters(inputs['reaxff'].get_dict() if 'reaxff' in inputs else None)
    for walk in walks:
        missing = sorted(set(walk['structure'].get_symbols_set()) - set(species))
        if missing:
            raise ValueError(
                f'the ReaxFF force field has no parameters for {missing} (it covers {species}); '
                'choose a force field for these elements.'
            )
        if not all(walk['structure'].pbc):
            raise ValueError('ReaxFF here runs periodic cells (boundary p p p): give the structure a cell and pbc')
        if walk['settings'] is None and parameters['minimize'] is None:
            raise ValueError(f'walk {walk["index"]} has neither MD settings nor a minimisation: nothing to run')
    return parameters


def reaxff_config(inputs: Mapping) -> tuple[dict, list[tuple]]:
    """Return the engine's part of ``md_input.json`` and the files to copy (force field, control file)."""
    parameters = validate_reaxff_parameters(inputs['reaxff'].get_dict() if 'reaxff' in inputs else None)
    copies = [(inputs['force_field'].uuid, inputs['force_field'].filename, FORCE_FIELD_FILENAME)]
    if 'control' in inputs:
        copies.append((inputs['control'].uuid, inputs['control'].filename, CONTROL_FILENAME))
    return {**parameters, 'control_file': CONTROL_FILENAME if 'control' in inputs else None}, copies
