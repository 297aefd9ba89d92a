"""Calcfunctions of a study's last steps: a quick E(V) bulk modulus with a model, and the glass analysis.

Both are leaves of the study's WorkGraph, so every number of a study's report is an output node linked to the
model and the structure it was computed from.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

__all__ = ('analyse_glass_structure', 'model_energy_volume')


@calcfunction
def model_energy_volume(model: orm.Data, structure: orm.StructureData, settings: orm.Dict) -> dict[str, orm.Data]:
    """E(V) of ``structure`` with MACE ``model``: single points on isotropically scaled cells, fitted.

    ``settings``: ``strain`` (largest |linear strain|), ``points``, ``form`` (``birch-murnaghan`` or ``vinet``).
    Fractional coordinates are kept (no relaxation at each volume): a quick estimate, stiffer than the relaxed
    bulk modulus that ``mofal.eos`` computes; the record says so. Outputs ``fit`` (V0, E0, B0 in GPa, B0′ with
    standard errors) and ``points`` (volumes Å³, energies eV).
    """
    import warnings

    import numpy as np

    from aiida_mofal.analysis.eos import fit_energy_volume

    options = settings.get_dict()
    atoms = structure.get_ase()
    model.require_elements(set(atoms.get_chemical_symbols()), f'structure {structure.pk}')
    calculator = model.get_calculator()
    strains = np.linspace(-options['strain'], options['strain'], int(options['points']))
    volumes, energies = [], []
    for strain in strains:
        scaled = atoms.copy()
        scaled.set_cell(atoms.cell * (1.0 + strain), scale_atoms=True)
        scaled.calc = calculator
        volumes.append(scaled.get_volume())
        energies.append(scaled.get_potential_energy())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the flags are kept in the record
        fit = fit_energy_volume(volumes, energies, form=options['form'], allow_unbracketed=True)
    points = orm.ArrayData()
    points.set_array('volumes', np.asarray(volumes))
    points.set_array('energies', np.asarray(energies))
    record = {
        **fit.as_dict(),
        'method': 'unrelaxed isotropic scaling, MACE single points',
        'atoms': len(atoms),
        'formula': atoms.get_chemical_formula(),
    }
    return {'fit': orm.Dict(record), 'points': points}


@calcfunction
def analyse_glass_structure(
    structure: orm.StructureData, settings: orm.Dict, reference: orm.StructureData | None = None
) -> orm.Dict:
    """RDFs, angles, coordination, density and rings of one glass (``aiida_mofal.analysis.glass``).

    ``settings``: fields of ``GlassSettings``; ``reference`` (optional): a glass to compare with (its RDF distance
    R_χ and density difference go into the result).
    """
    from aiida_mofal.analysis.glass import GlassSettings, analyse_glass

    result = analyse_glass(
        structure.get_ase(), GlassSettings(**settings.get_dict()), reference=reference.get_ase() if reference else None
    )
    return orm.Dict(result)
