"""Parser ``mofal.cp2k.packed``: one label per converged structure of a packed CP2K job, failures by index.

A farmed job (CP2K FARMING, ``farm.out``) that CP2K aborted part-way has outputs for the structures up to the
one that aborted; the structures after it never ran, and their reason says so, with CP2K's abort message.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ExitCode
from aiida.parsers import Parser

from aiida_mofal.cp2k.outputs import abort_message, parse_cp2k_output

__all__ = ('Cp2kPackedParser',)


def _why(result, text: str) -> str | None:
    """Return why a parsed output is no label, or None when it is one."""
    if result.walltime_exceeded:
        return 'CP2K walltime reached'
    if result.scf_not_converged:
        return 'SCF not converged'
    if result.aborted:
        return 'CP2K aborted: ' + (abort_message(text) or '; '.join(result.messages[-2:]))
    if not result.ended or not result.complete:
        return 'output incomplete (crashed or killed)'
    if result.forces_ev_a is None:
        return 'no forces in the output'
    return None


class Cp2kPackedParser(Parser):
    """Read ``frame_<i>.out`` of every structure into one ``labels`` node; the others are listed in ``failed``."""

    def parse(self, **kwargs) -> ExitCode:
        """Parse every structure's output; succeed when at least one structure was labelled."""
        from aiida_mofal.calculations.cp2k_packed import FARM_OUTPUT, frame_name

        frames = self.node.inputs.structures.get_atoms()
        names = set(self.retrieved.base.repository.list_object_names())
        if not any(name.startswith('frame_') and name.endswith('.out') for name in names) and FARM_OUTPUT not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING
        failed, parsed = {}, {}
        for index, atoms in enumerate(frames):
            name = frame_name(index)
            if f'{name}.out' not in names:
                continue
            text = self.retrieved.base.repository.get_object_content(f'{name}.out')
            result = parse_cp2k_output(text)
            reason = _why(result, text)
            if reason is None and result.forces_ev_a.shape != (len(atoms), 3):
                reason = f'forces for {result.forces_ev_a.shape[0]} atoms, expected {len(atoms)}'
            parsed[index] = (result, reason)
        never_ran = 'no output (the job ended before this structure ran)'
        if FARM_OUTPUT in names:  # one CP2K process ran them all: an abort stopped the structures after it too
            farm = abort_message(self.retrieved.base.repository.get_object_content(FARM_OUTPUT))
            for index, (result, _) in list(parsed.items()):
                if farm and not result.ended and not result.aborted:  # the abort banner went to farm.out
                    result.aborted, parsed[index] = True, (result, f'CP2K aborted: {farm}')
            aborted = [index for index, (result, _) in sorted(parsed.items()) if result.aborted]
            stop = f'{frame_name(aborted[0])}: {parsed[aborted[0]][1]}' if aborted else 'CP2K stopped or was killed'
            never_ran = f'no output (the CP2K farm ended before this structure ran; {stop})'
        rows = []
        for index, atoms in enumerate(frames):
            if index not in parsed:
                failed[str(index)] = never_ran
                continue
            result, reason = parsed[index]
            if reason is not None:
                failed[str(index)] = reason
                continue
            stress = result.stress_ev_a3 if atoms.pbc.all() and result.stress_ev_a3 is not None else None
            rows.append((index, result.energy_ev, result.forces_ev_a, stress))
        if rows:  # one node for the whole job (label_rows reads it back per structure)
            self.out('labels', _labels_node(rows))
        if failed:
            self.out('failed', orm.Dict(failed))
        if not rows:
            return self.exit_codes.ERROR_NO_LABEL.format(reason=next(iter(failed.values())))
        return ExitCode(0)


def _labels_node(rows) -> orm.ArrayData:
    """One ArrayData: ``index``, ``energy``, ``natoms``, ``forces`` (stacked) and ``stress`` (NaN where none)."""
    labels = orm.ArrayData()
    labels.set_array('index', np.array([row[0] for row in rows], dtype=int))
    labels.set_array('energy', np.array([row[1] for row in rows], dtype=float))
    labels.set_array('natoms', np.array([len(row[2]) for row in rows], dtype=int))
    labels.set_array('forces', np.concatenate([np.asarray(row[2], dtype=float) for row in rows]))
    if any(row[3] is not None for row in rows):
        nan = np.full((3, 3), np.nan)
        labels.set_array('stress', np.array([nan if row[3] is None else row[3] for row in rows], dtype=float))
    return labels
