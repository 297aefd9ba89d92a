"""Parser ``mofal.cp2k`` of CP2K labelling single points: energy, forces and stress in a ``mofal.dataset``'s units.

aiida-cp2k 2.1.1's parsers return the energy but no single-point force or stress arrays (its issue #144); this
one, attached to aiida-cp2k's ``Cp2kCalculation`` through ``metadata.options.parser_name = 'mofal.cp2k'``,
returns them, and returns a label only when the run really converged.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ExitCode
from aiida.parsers import Parser

from aiida_mofal.cp2k.outputs import parse_cp2k_output

__all__ = ('Cp2kLabelParser',)


class Cp2kLabelParser(Parser):
    """Turn ``aiida.out`` into ``output_parameters`` and, for a converged run, a ``labels`` ArrayData.

    ``labels`` holds ``energy`` (shape (1,), eV), ``forces`` ((N, 3), eV/Å) and, for periodic cells, ``stress``
    ((3, 3), eV/Å³, ASE's sign convention). Exit codes are those of ``Cp2kCalculation``: 210 no output file,
    302 unreadable output, 303 incomplete (crash or killed), 304 abort, 400 CP2K's walltime reached,
    450 SCF not converged. When the scheduler already said the job ran out of walltime (120, e.g. SLURM's
    ``CANCELLED ... DUE TO TIME LIMIT``) and CP2K's output is missing or incomplete, that verdict is kept: it is
    the reason, and the base work chain's walltime handler acts on it.
    """

    def parse(self, **kwargs) -> ExitCode:
        """Parse the retrieved output file."""
        filename = self.node.base.attributes.get('output_filename')
        out_of_walltime = self.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME
        scheduler_walltime = self.node.exit_status == out_of_walltime.status  # set by the scheduler's parser
        try:
            text = self.retrieved.base.repository.get_object_content(filename)
        except (FileNotFoundError, OSError):
            return out_of_walltime if scheduler_walltime else self.exit_codes.ERROR_OUTPUT_MISSING
        result = parse_cp2k_output(text)
        parameters = {
            'energy': result.energy_hartree,
            'energy_units': 'a.u.',
            'energy_ev': result.energy_ev,
            'scf_converged': result.scf_converged and not result.scf_not_converged,
            'scf_steps': result.scf_steps,
            'walltime_exceeded': result.walltime_exceeded,
            'cp2k_version': result.version,
            'warnings': result.warnings,
            'messages': result.messages,
        }
        self.out('output_parameters', orm.Dict(parameters))

        if result.walltime_exceeded:
            return self.exit_codes.ERROR_OUT_OF_WALLTIME
        if result.scf_not_converged:
            return self.exit_codes.ERROR_SCF_NOT_CONVERGED
        if result.aborted:
            return self.exit_codes.ERROR_OUTPUT_CONTAINS_ABORT
        if not result.ended or not result.complete:
            return out_of_walltime if scheduler_walltime else self.exit_codes.ERROR_OUTPUT_INCOMPLETE

        natoms = len(self.node.inputs.structure.sites) if 'structure' in self.node.inputs else None
        forces = result.forces_ev_a
        if forces is None or (natoms is not None and forces.shape != (natoms, 3)):
            self.logger.error(f'expected forces for {natoms} atoms, found {None if forces is None else forces.shape}')
            return self.exit_codes.ERROR_OUTPUT_PARSE
        labels = orm.ArrayData()
        labels.set_array('energy', np.array([result.energy_ev]))
        labels.set_array('forces', forces)
        periodic = 'structure' in self.node.inputs and all(self.node.inputs.structure.pbc)
        if periodic and result.stress_ev_a3 is not None:
            labels.set_array('stress', result.stress_ev_a3)
        self.out('labels', labels)
        return ExitCode(0)
