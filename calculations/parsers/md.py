"""Parser of ``mofal.md``: the walks of one job into trajectory, structure, restart, integrity (and charges) nodes.

Every walk becomes its own ``mofal.trajectory`` node (frames + thermodynamics, with the walk's index, seed, targets
and status as attributes), its last frame, its restart state and its integrity record (non-metal bonds broken or
formed, :func:`aiida_mofal.analysis.integrity.integrity_record`); ReaxFF walks add their QEq charges. A walk that
failed in a way a work chain can fix (blow-up, lost atoms, QEq, walltime) keeps these outputs; the job's exit code
is the most severe of its walks', and ``result`` lists each walk's status so that a work chain continues each walk
on its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from aiida_mofal.calculations.md import MdCalculation, walk_attributes, walks_of
from aiida_mofal.data.trajectory import MdTrajectoryData
from aiida_mofal.md import mliap

from ..script import ScriptParser

__all__ = ['SEVERITY', 'MdParser']

SEVERITY = {
    'blowup': 'ERROR_BLOWUP',
    'lost_atoms': 'ERROR_LOST_ATOMS',
    'qeq_not_converged': 'ERROR_QEQ_NOT_CONVERGED',
    'nan': 'ERROR_NAN_IN_MODEL',
    'broken_bonds': 'ERROR_BROKEN_BONDS',
    'walltime': 'ERROR_OUT_OF_WALLTIME',
}
"""Walk status → exit code, most severe first: the job reports the first that any of its walks has."""


class MdParser(ScriptParser):
    """Turn the files of ``md_run.py`` (or of a ``lammps-mliap`` run) into one set of outputs per walk."""

    def parse(self, **kwargs):
        """Parse every walk of the job; return the exit code of the most severe walk status (None when all ended)."""
        temporary = Path(kwargs.get('retrieved_temporary_folder') or '.')
        walks = walks_of(self.node.inputs)
        if self.node.inputs.engine.value == 'lammps-mliap':
            return self._parse_mliap(temporary, walks[0])
        result = self.driver_result(MdCalculation.RESULT)
        if isinstance(result, ExitCode):
            return result
        statuses, namespace = [], {}
        for walk, walk_result in zip(walks, result['walks']):
            walk_result['total_steps'] = walk_attributes(walk)['total_steps']
            outputs = self._walk_outputs(walk, walk_result, temporary / walk['directory'])
            if walk['name'] is None:
                for key, node in outputs.items():
                    self.out(key, node)
            else:
                namespace[walk['name']] = outputs
            statuses.append(walk_result)
        if namespace:
            self.out('walks', namespace)
        self.out('result', orm.Dict({**result, 'walks': statuses}))
        if len(walks) == 1 and 'trajectory' not in outputs and statuses[0]['status'] == 'finished':
            return self.exit_codes.ERROR_NO_FRAMES
        return self._exit_code(statuses)

    def _exit_code(self, statuses: list[dict]):
        for status, name in SEVERITY.items():
            walk = next((walk for walk in statuses if walk['status'] == status), None)
            if walk is None:
                continue
            if status == 'walltime':
                return self.exit_codes[name].format(step=walk['completed_steps'], total=walk['total_steps'])
            return self.exit_codes[name].format(reason=f'walk {walk["index"]}: {walk["message"]}')
        return None

    def _walk_outputs(self, walk: dict, result: dict, directory: Path) -> dict:
        """Return the output nodes of one walk; set ``result['status']`` to ``broken_bonds`` when the policy fails."""
        outputs = {}
        if (directory / 'restart.npz').is_file():
            outputs['restart'] = orm.SinglefileData(directory / 'restart.npz', filename='restart.npz')
        if not (directory / 'trajectory.npz').is_file():
            return outputs
        settings = walk['settings']
        engine = self.node.inputs.engine.value
        trajectory = MdTrajectoryData.from_files(
            directory / 'trajectory.npz',
            directory / 'thermo.npz',
            engine=engine,
            timestep=settings['timestep'] if settings else None,
            ensemble=settings['ensemble'] if settings else 'minimize',
            extra_attributes={
                **walk_attributes(walk),
                'status': result['status'],
                'completed_steps': int(result['completed_steps']),
                'completed_time': float(result.get('completed_time', 0.0)),
                **({'gate': result['gate']} if result.get('gate') else {}),
            },
        )
        outputs.update(self._finish(trajectory, walk, result))
        if engine == 'lammps-reaxff':
            with np.load(directory / 'trajectory.npz') as handle:
                charges = orm.ArrayData({'steps': handle['steps'], 'charges': handle['charges']})
            charges.base.attributes.set('units', 'e (QEq, fix qeq/reaxff)')
            outputs['charges'] = charges
        return outputs

    def _finish(self, trajectory: MdTrajectoryData, walk: dict, result: dict) -> dict:
        """Return trajectory, last frame and integrity record; a failed integrity policy marks the walk."""
        from aiida_mofal.analysis.integrity import integrity_record

        record = integrity_record(
            walk['structure'].get_ase(),
            trajectory.get_array('positions'),
            trajectory.get_array('cells'),
            trajectory.get_array('steps'),
            fail_on_broken=bool(walk['settings'] and walk['settings']['fail_on_broken_bonds']),
        )
        if record['failed'] and result['status'] in ('finished', 'walltime'):
            result.update(status='broken_bonds', message=record['failure_reason'])
        return {'trajectory': trajectory, 'structure': trajectory.get_structure(-1), 'integrity': orm.Dict(record)}

    def _parse_mliap(self, temporary: Path, walk: dict):
        if not (temporary / mliap.DUMP_FILE).is_file():
            return self.exit_codes.ERROR_NO_RESULT.format(reason=self.stderr_tail())
        atoms = walk['structure'].get_ase()
        frames, thermo = mliap.read_output(temporary, walk['settings'], atoms.cell.array)
        trajectory = MdTrajectoryData(
            frames,
            thermo,
            numbers=atoms.numbers,
            pbc=atoms.pbc,
            engine='lammps-mliap',
            timestep=walk['settings']['timestep'],
            ensemble=walk['settings']['ensemble'],
            extra_attributes=walk_attributes(walk),
        )
        result = {'status': 'finished', 'message': ''}
        for key, node in self._finish(trajectory, walk, result).items():
            self.out(key, node)
        return self.exit_codes.ERROR_BROKEN_BONDS.format(reason=result['message']) if result['message'] else None
