"""Parser of ``mofal.relax``: relaxed structures, their forces and stresses, and one result record per structure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from ..script import ScriptParser

__all__ = ['MaceRelaxParser']


class MaceRelaxParser(ScriptParser):
    """Turn ``relax_result.json`` and ``relaxed_<k>.npz`` into ``structures.<name>``, ``forces.<name>``, ``result``."""

    def parse(self, **kwargs):
        """Parse every relaxed structure; exit 401 when some did not converge (outputs kept for a continuation)."""
        calc = self.node.process_class
        result = self.driver_result(calc.RESULT)
        if isinstance(result, ExitCode):
            return result
        temporary = Path(kwargs.get('retrieved_temporary_folder') or '.')
        inputs = self.node.inputs.structures
        structures, forces, records = {}, {}, {}
        for entry in result['structures']:
            path = temporary / entry['file']
            if not path.is_file() or not math.isfinite(entry['energy']):
                continue
            with np.load(path) as handle:
                atoms = inputs[entry['name']].get_ase()
                atoms.set_cell(handle['cell'], scale_atoms=False)
                atoms.set_positions(handle['positions'])
                arrays = orm.ArrayData({'forces': handle['forces'], 'stress': handle['stress']})
            units = {'forces': 'eV/Å', 'stress': 'eV/Å^3 (Voigt xx yy zz yz xz xy, ASE sign)'}
            arrays.base.attributes.set('units', units)
            structures[entry['name']] = orm.StructureData(ase=atoms)
            forces[entry['name']] = arrays
            records[entry['name']] = {
                'energy_eV': entry['energy'],
                'volume_A3': entry['volume'],
                'stress_eV_A3': entry['stress'],
                'pressure_GPa': -sum(entry['stress'][:3]) / 3.0 * 160.21766208,
                'steps': entry['steps'],
                'converged': entry['converged'],
                'max_force_eV_A': entry['max_force'],
                'max_generalised_force_eV_A': entry['max_generalised_force'],
                'seconds': entry['seconds'],
                'num_atoms': len(atoms),
            }
        if structures:
            self.out('structures', structures)
            self.out('forces', forces)
        settings = {'mode': 'full', **(self.node.inputs.settings.get_dict() if 'settings' in self.node.inputs else {})}
        self.out('result', orm.Dict({
            'structures': records,
            'status': result['status'],
            'message': result.get('message', ''),
            'setup_seconds': result.get('setup_seconds'),
            'wall_seconds': result.get('wall_seconds'),
            'mode': settings['mode'],
        }))  # fmt: skip
        if result['status'] == 'nan':
            return self.exit_codes.ERROR_NAN_IN_MODEL.format(reason=result['message'])
        if result['status'] == 'walltime':
            return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(reason=result['message'])
        unconverged = sorted(name for name in inputs if not records.get(name, {}).get('converged', False))
        if unconverged:
            from aiida_mofal.md.relax import validate_relax_settings

            steps = validate_relax_settings(settings)['max_steps']
            return self.exit_codes.ERROR_NOT_CONVERGED.format(
                count=len(unconverged), steps=steps, names=', '.join(unconverged)
            )
        return None
