"""``mofal.eos``: equations of state and bulk moduli of one structure with a MACE model, by up to four methods.

Methods (:mod:`aiida_mofal.analysis.eos_methods`; settings per method in input ``settings``):

* ``ev``: an optional full relaxation (``mofal.relax.base``, mode ``full``), then one job relaxing shape and
  positions at each volume of the grid (mode ``shape``), then :func:`~aiida_mofal.calculations.eos.ev_result`.
* ``pv``: one ``mofal.md.base`` job with an NPT walk per pressure → :func:`~aiida_mofal.calculations.eos.pv_result`.
* ``strain``: (reference ``npt``) an NPT run at 0 GPa for ⟨V⟩, then one job with an NVT walk per volume V(1 ± δ)
  → :func:`~aiida_mofal.calculations.eos.strain_result`.
* ``fluctuations``: one NσT run with a triclinic cell → :func:`~aiida_mofal.calculations.eos.fluctuation_result`.

The methods run side by side; with two or more, ``comparison`` says which agree within their errors. A method
whose child fails does not stop the others; the work chain then ends with ``ERROR_METHOD_FAILED``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from aiida_mofal.analysis.eos_methods import METHODS, md_settings_for, production, validate_method_settings
from aiida_mofal.calculations.eos import compare_bulk_moduli, ev_result, fluctuation_result, pv_result, strain_result
from aiida_mofal.calculations.md import check_md_inputs
from aiida_mofal.calculations.relax import check_relax_inputs
from aiida_mofal.data.mace_model import MaceModelData

from .md import MdBaseWorkChain
from .relax import MaceRelaxWorkChain
from .restart import serial_options

__all__ = ('EquationOfStateWorkChain', 'check_eos_inputs')


def check_eos_inputs(structure: orm.StructureData, model: MaceModelData, methods: Sequence[str],
                     settings: Mapping[str, Any] | None) -> dict:  # fmt: skip
    """Refuse what cannot give a result, before anything is submitted; return the complete settings per method.

    :raises ValueError: an unknown method or setting, a grid that cannot bracket the minimum, elements the model
        does not know, a non-periodic or left-handed cell.
    """
    if not methods:
        raise ValueError(f'no method: choose one or more of {", ".join(METHODS)}')
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(methods))
    if unknown:
        raise ValueError(f'settings for {unknown}, which are not among the methods run ({", ".join(methods)})')
    check_relax_inputs({'structure': structure}, model, None)
    complete = {method: validate_method_settings(method, settings.get(method)) for method in methods}
    for method, values in complete.items():
        if method != 'ev':
            for ensemble, barostat in (('npt', values.get('barostat', 'isotropic')), ('nvt', 'isotropic')):
                check_md_inputs(structure, model, md_settings_for(values, ensemble, values['temperature'],
                                                                  0.0, barostat=barostat), 'ase')  # fmt: skip
    return complete


class EquationOfStateWorkChain(WorkChain):
    """Bulk moduli of a structure with a MACE model by E–V, P–V, finite strain and/or strain fluctuations."""

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='The periodic structure.')
        spec.input('model', valid_type=MaceModelData, help='The MACE model.')
        spec.input('code', valid_type=orm.AbstractCode, help='A python-mace code.')
        spec.input('methods', valid_type=orm.List, help=f'Any of {", ".join(METHODS)}.')
        spec.input('settings', valid_type=orm.Dict, required=False, help='Per method: its settings (eos_methods).')
        spec.input('options', valid_type=orm.Dict, required=False, help='CalcJob options of every job.')
        spec.input('engine', valid_type=orm.Str, default=lambda: orm.Str('ase'), help='MD engine (ase, lammps-python).')
        spec.inputs.validator = cls.validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.should_relax_first)(cls.run_relax_first, cls.inspect_relax_first),
            cls.run_first,
            cls.inspect_first,
            cls.run_second,
            cls.inspect_second,
            cls.results,
        )
        spec.output('relaxed_structure', valid_type=orm.StructureData, required=False, help='ev: fully relaxed.')
        for method in METHODS:
            spec.output(method, valid_type=orm.Dict, required=False, help=f'The {method} result: points, fit, errors.')
        spec.output('comparison', valid_type=orm.Dict, required=False, help='Which methods agree within errors.')
        spec.exit_code(400, 'ERROR_METHOD_FAILED', message='method(s) {methods} failed: {reasons}')
        spec.exit_code(401, 'ERROR_RELAX_FAILED', message='the full relaxation failed: {reason}')
        spec.exit_code(410, 'ERROR_UNBRACKETED', message='the E–V grid does not bracket the minimum: {reason}')

    @staticmethod
    def validate_inputs(value, _):
        """Check methods, settings, structure and model before submission."""
        try:
            check_eos_inputs(value['structure'], value['model'], list(value['methods'].get_list()),
                             value['settings'].get_dict() if 'settings' in value else None)  # fmt: skip
        except (ValueError, KeyError) as exception:
            return str(exception)
        return None

    @classmethod
    def get_builder_for(cls, code, structure, model, methods: Sequence[str] = ('ev',),
                        settings: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None,
                        engine: str = 'ase'):  # fmt: skip
        """Return a builder for ``methods`` of ``structure`` with ``model``; every input is checked first.

        :param settings: per method overrides, e.g. ``{'ev': {'points': 7}, 'strain': {'steps': 4000}}``.
        :raises ValueError: for inputs that cannot give a result.
        """
        check_eos_inputs(structure, model, list(methods), settings)
        builder = cls.get_builder()
        builder.structure, builder.model, builder.code = structure, model, code
        builder.methods = orm.List(list(methods))
        builder.settings = orm.Dict(copy.deepcopy(dict(settings or {})))
        builder.options = orm.Dict(dict(options or {}))
        builder.engine = orm.Str(engine)
        return builder

    def setup(self):
        """Complete the settings of every method."""
        methods = self.inputs.methods.get_list()
        given = self.inputs.settings.get_dict() if 'settings' in self.inputs else {}
        self.ctx.settings = {m: validate_method_settings(m, given.get(m)) for m in methods}
        self.ctx.reference = self.inputs.structure
        self.ctx.failed = {}
        self.ctx.results = {}

    def _relax(self, structures: dict, mode: str, settings: dict):
        relax = {key: settings[key] for key in ('fmax', 'max_steps', 'optimizer')}
        options = serial_options(self.inputs.get('options'))
        builder = MaceRelaxWorkChain.get_builder_for(self.inputs.code, structures, self.inputs.model,
                                                     {**relax, 'mode': mode}, options,
                                                     max_iterations=settings['max_iterations'])  # fmt: skip
        return self.submit(builder)

    def _md(self, structure, walks: list[dict]):
        """Submit one ``mofal.md.base`` job with ``walks`` (complete MD settings, optionally a ``structure`` each)."""
        builder = MdBaseWorkChain.get_builder_from_protocol(
            self.inputs.code, structure, self.inputs.model, protocol=None, engine=self.inputs.engine.value,
            options=serial_options(self.inputs.get('options')), walks=walks,
        )  # fmt: skip
        return self.submit(builder)

    def should_relax_first(self):
        """Relax positions and cell fully before the E–V grid when asked to (``ev.relax_first``)."""
        return 'ev' in self.ctx.settings and self.ctx.settings['ev']['relax_first']

    def run_relax_first(self):
        """Relax the structure fully (positions and cell at 0 GPa)."""
        node = self._relax({'structure': self.inputs.structure}, 'full', self.ctx.settings['ev'])
        self.report(f'full relaxation {node.process_label}<{node.pk}> before the E–V grid')
        return ToContext(relax_first=node)

    def inspect_relax_first(self):
        """Take the relaxed structure as the reference of the E–V grid."""
        node = self.ctx.relax_first
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_RELAX_FAILED.format(reason=f'{node.process_label}<{node.pk}> '
                                                             f'[{node.exit_status}] {node.exit_message}')  # fmt: skip
        self.ctx.reference = node.outputs.structures.structure
        self.out('relaxed_structure', self.ctx.reference)
        return None

    def run_first(self):
        """Submit each method's first child: the E–V grid, the P–V walks, the strain reference, the NσT run."""
        children = {}
        for method, settings in self.ctx.settings.items():
            if method == 'ev':
                children['ev'] = self._relax(self._grid(settings), 'shape', settings)
            elif method == 'pv':
                walks = [{**md_settings_for(settings, 'npt', settings['temperature'], pressure), 'seed': seed}
                         for seed, pressure in enumerate(settings['pressures'], start=settings['seed'])]  # fmt: skip
                children['pv'] = self._md(self.inputs.structure, walks)
            elif method == 'strain' and settings['reference'] == 'npt':
                walk = md_settings_for(settings, 'npt', settings['temperature'], 0.0, settings['reference_steps'])
                children['strain_reference'] = self._md(self.inputs.structure, [walk])
            elif method == 'strain':
                children['strain'] = self._strain_walks(self.inputs.structure, settings)
            elif method == 'fluctuations':
                walk = md_settings_for(settings, 'npt', settings['temperature'], settings['pressure'],
                                       barostat='triclinic')  # fmt: skip
                children['fluctuations'] = self._md(self.inputs.structure, [walk])
        for key, node in children.items():
            self.report(f'{key}: {node.process_label}<{node.pk}>')
        return ToContext(**children)

    def _grid(self, settings: dict) -> dict:
        """Return the E–V grid: the reference scaled isotropically to each volume factor (positions scaled with it)."""
        atoms = self.ctx.reference.get_ase()
        grid = {}
        for index, factor in enumerate(settings['volume_factors']):
            scaled = atoms.copy()
            scaled.set_cell(atoms.cell.array * factor ** (1.0 / 3.0), scale_atoms=True)
            grid[f'v{index:02d}'] = orm.StructureData(ase=scaled)
        return grid

    def _strain_walks(self, structure: orm.StructureData, settings: dict, volume: float | None = None):
        """NVT walks at V(1 ± δ) around ``volume`` (default the structure's) from ``structure`` scaled to each."""
        atoms = structure.get_ase()
        volume = atoms.get_volume() if volume is None else volume
        self.ctx.strain_volume = float(volume)
        entries = []
        for index, target in enumerate(np.linspace(1 - settings['strain'], 1 + settings['strain'], settings['points'])):
            scaled = atoms.copy()
            scaled.set_cell(atoms.cell.array * (target * volume / atoms.get_volume()) ** (1.0 / 3.0), scale_atoms=True)
            walk = md_settings_for(settings, 'nvt', settings['temperature'])
            entries.append({**walk, 'seed': settings['seed'] + index, 'structure': orm.StructureData(ase=scaled)})
        return self._md(structure, entries)

    def _failed(self, key: str) -> bool:
        node = self.ctx[key]
        if node.is_finished_ok:
            return False
        self.ctx.failed[key] = f'{node.process_label}<{node.pk}> [{node.exit_status}] {node.exit_message}'
        self.report(f'{key} failed: {self.ctx.failed[key]}')
        return True

    def inspect_first(self):
        """Analyse the methods that are complete; note the failed ones."""
        for key in ('ev', 'pv', 'fluctuations', 'strain', 'strain_reference'):
            if key in self.ctx and not self._failed(key) and key != 'strain_reference':
                self._analyse(key)
        if 'ev' in self.ctx.failed and 'result' in self.ctx.ev.outputs:
            # relaxations left unconverged at max_iterations: the points are still fitted and stored, flagged
            # ('relaxation(s) did not converge'), and the method still counts as failed
            reason = self.ctx.failed['ev']
            self._analyse('ev')
            if self.ctx.failed['ev'] != reason:  # the fit failed too: keep both reasons
                self.ctx.failed['ev'] = f'{reason}; {self.ctx.failed["ev"]}'

    def run_second(self):
        """Finite strain after its NPT reference: NVT walks at V(1 ± δ) around ⟨V⟩ of the reference run."""
        if 'strain_reference' not in self.ctx or 'strain_reference' in self.ctx.failed:
            return None
        settings = self.ctx.settings['strain']
        trajectory = self.ctx.strain_reference.outputs.walks.walk_0.trajectory
        thermo = trajectory.get_thermo()
        volume = float(np.mean(production(thermo['volume'], thermo['step'], settings['equilibration'])))
        self.report(f'strain: ⟨V⟩ = {volume:.6g} Å³ from the NPT reference run')
        node = self._strain_walks(trajectory.get_structure(-1), settings, volume)
        self.report(f'strain: {node.process_label}<{node.pk}>')
        return ToContext(strain=node)

    def inspect_second(self):
        """Analyse the finite-strain walks."""
        if 'strain_reference' in self.ctx and 'strain' in self.ctx and not self._failed('strain'):
            self._analyse('strain')

    def _trajectories(self, key: str) -> dict:
        walks = self.ctx[key].outputs.walks
        return {name: walks[name]['trajectory'] for name in walks}

    def _analyse(self, key: str) -> None:
        """Store the result of method ``key`` from its child's outputs (a calcfunction: provenance)."""
        settings = orm.Dict(self.ctx.settings[key])
        try:
            if key == 'ev':
                result = ev_result(self.ctx.ev.outputs.result, settings)
            elif key == 'pv':
                mass = orm.Float(float(self.inputs.structure.get_ase().get_masses().sum()))
                result = pv_result(settings, mass, **self._trajectories('pv'))
            elif key == 'strain':
                result = strain_result(settings, orm.Float(self.ctx.strain_volume), **self._trajectories('strain'))
            else:
                result = fluctuation_result(settings, self.ctx.fluctuations.outputs.walks.walk_0.trajectory)
        except Exception as exception:  # noqa: BLE001  (an analysis that cannot fit is that method's failure)
            self.ctx.failed[key] = f'analysis failed: {exception}'
            self.report(f'{key}: {self.ctx.failed[key]}')
            return
        for note in result['warnings']:
            self.report(f'{key} warning: {note}')
        self.report(f'{key}: B0 = {result["B0_GPa"]:.4g} ± {result["B0_GPa_err"]:.2g} GPa')
        self.ctx.results[key] = result
        self.out(key, result)

    def results(self):
        """Compare the methods' bulk moduli; end with the failures, if any."""
        if len(self.ctx.results) >= 2:
            comparison = compare_bulk_moduli(**self.ctx.results)
            self.out('comparison', comparison)
            for pair in comparison['pairs']:
                verdict = 'agree' if pair['agree'] else 'DISAGREE'
                self.report(f'{pair["methods"][0]} vs {pair["methods"][1]}: {verdict} ({pair["sigma"]:.2g} σ)')
        if self.ctx.failed:
            reasons = '; '.join(f'{key}: {reason}' for key, reason in self.ctx.failed.items())
            return self.exit_codes.ERROR_METHOD_FAILED.format(methods=', '.join(self.ctx.failed), reasons=reasons)
        ev = self.ctx.results.get('ev')
        if ev is not None and not ev['bracketed'] and not self.ctx.settings['ev']['allow_unbracketed']:
            return self.exit_codes.ERROR_UNBRACKETED.format(reason='; '.join(ev['warnings']))
        return None
