"""``mofal.relax``: relax one or several structures with a MACE model in one remote job.

Modes (:mod:`aiida_mofal.md.relax`): positions at a fixed cell, positions and shape at a fixed volume (the E–V
grid), or positions and the full cell at a pressure, with ASE's optimisers and Fréchet cell filter. The driver
``scripts/relax_run.py`` runs with a ``python-mace`` code; the MD driver ``md_run.py`` and its pure modules travel
beside it (:func:`~aiida_mofal.calculations.md.ship_driver`) for the model loader (TorchScript or mace-torch) and
the walltime clock, so the remote needs no aiida-mofal. Several structures in one job pay the interpreter, the
imports and the model load once: the nine volumes of an E–V grid are one job.

Inputs ``structures.<name>`` (periodic StructureData), ``model``, optional ``compiled_model`` and ``settings``.
Outputs per structure ``structures.<name>`` (relaxed) and ``forces.<name>`` (ArrayData ``forces`` eV/Å, ``stress``
eV/Å³ Voigt with ASE's sign), and ``result`` (Dict: per name energy, stress, volume, steps, converged). A job that
leaves some structure unconverged at its step limit exits ``ERROR_NOT_CONVERGED`` (401) with every output, and
``mofal.relax.base`` continues those structures.
"""

from __future__ import annotations

from aiida import orm

from aiida_mofal.data.mace_model import MaceModelData
from aiida_mofal.md.relax import validate_relax_settings

from .md import ship_driver
from .script import SCRIPTS, MaceScriptCalculation

__all__ = ['MaceRelaxCalculation', 'check_relax_inputs']


def check_relax_inputs(structures: dict, model: MaceModelData | None, settings: dict | None) -> dict:
    """Refuse inputs that cannot give a result before submission; return the validated settings.

    :raises ValueError: naming the problem and the fix (bad settings, no structure, elements the model does not
        know, a non-periodic or left-handed cell).
    """
    settings = validate_relax_settings(settings)
    if not structures:
        raise ValueError('no structure to relax: give structures.<name>')
    for name, structure in structures.items():
        atoms = structure.get_ase()
        if model is not None:
            model.require_elements(atoms.get_chemical_symbols(), what=f'structure {name} ({structure.pk or "new"})')
        if not atoms.pbc.all():
            raise ValueError(
                f'structure {name} is not periodic in all three directions (pbc={atoms.pbc.tolist()}): the MACE '
                'relaxations, cell filters and equations of state here need a periodic cell'
            )
        if atoms.cell.volume <= 1e-6 or atoms.cell.handedness != 1:
            raise ValueError(f'structure {name} has a degenerate or left-handed cell; swap two cell vectors')
    return settings


class MaceRelaxCalculation(MaceScriptCalculation):
    """Relax structures with a MACE model (ASE optimisers, optional cell filter) in one job."""

    SCRIPT = SCRIPTS / 'relax_run.py'
    CONFIG = 'relax_input.json'
    RESULT = 'relax_result.json'
    STDOUT = 'relax.out'
    STDERR = 'relax.err'

    @classmethod
    def define(cls, spec):
        """Define inputs, outputs and exit codes."""
        super().define(spec)
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True, help='What to relax, by name.')
        cls.define_model(spec, required=True, help='The MACE model.')
        spec.input('settings', valid_type=orm.Dict, required=False, help='aiida_mofal.md.relax settings.')
        spec.inputs['metadata']['options']['parser_name'].default = 'mofal.relax'

        spec.output_namespace('structures', valid_type=orm.StructureData, dynamic=True, help='Relaxed, by name.')
        spec.output_namespace('forces', valid_type=orm.ArrayData, dynamic=True, help='Forces and stress, by name.')
        spec.output('result', valid_type=orm.Dict, help='Per name: energy, stress, volume, steps, converged.')

        cls.define_script_exit_codes(spec, script='relaxation', result='result')
        spec.exit_code(320, 'ERROR_NAN_IN_MODEL', message='the MACE model returned NaN/inf: {reason}')
        spec.exit_code(400, 'ERROR_OUT_OF_WALLTIME', message='stopped before the walltime: {reason}')
        spec.exit_code(
            401, 'ERROR_NOT_CONVERGED', message='{count} structure(s) did not converge in {steps} steps: {names}'
        )

    @classmethod
    def validate_inputs(cls, value, ctx):
        """Check settings, elements and cells before submission."""
        if 'structures' not in value or 'model' not in value:
            return None  # the port checks name what is missing
        try:
            check_relax_inputs(
                dict(value['structures']), value['model'], value['settings'].get_dict() if 'settings' in value else None
            )
        except ValueError as exception:
            return str(exception)
        if value['device'].value not in ('cpu', 'cuda'):
            return f"device must be 'cpu' or 'cuda', got {value['device'].value!r}"
        return None

    def prepare_for_submission(self, folder):
        """Write the structures and the configuration, ship the drivers, copy the model."""
        import numpy as np

        settings = validate_relax_settings(self.inputs.settings.get_dict() if 'settings' in self.inputs else None)
        entries = []
        for position, name in enumerate(sorted(self.inputs.structures)):
            atoms = self.inputs.structures[name].get_ase()
            filename = f'structure_{position}.npz'
            with folder.open(filename, 'wb') as handle:
                np.savez(handle, numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array,
                         pbc=atoms.pbc)  # fmt: skip
            entries.append({'name': name, 'structure_file': filename})
        copies = []
        config = {
            'structures': entries,
            'relax': settings,
            **self.model_config(folder, copies),
            'walltime_seconds': self.inputs.metadata.options.get('max_wallclock_seconds'),
        }
        return self.script_calcinfo(
            folder,
            config,
            local_copy_list=copies,
            retrieve_list=[self.RESULT],
            retrieve_temporary_list=['relaxed_*.npz'],
            provenance_exclude_list=[self.MODEL],
        )

    def ship(self, folder) -> None:
        """Copy ``relax_run.py`` and, beside it, ``md_run.py`` with the package ``mofal_md`` (:func:`ship_driver`)."""
        ship_driver(folder.abspath)
        folder.insert_path(str(self.SCRIPT), self.SCRIPT.name)
