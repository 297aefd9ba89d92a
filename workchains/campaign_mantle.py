"""The mantle design rule in the cluster campaign: ``extract.mantle_depth: auto`` (a mixin of the work chain).

Each cycle, before its clusters are cut, the cycle's model force-matches sample clusters of every target at
each candidate depth (``calculations.mantle.choose_mantle_depth``); the stored choice is an input of the scan
calcfunction that cuts with it. An integer ``mantle_depth`` runs nothing here and cuts exactly as before.
"""

from __future__ import annotations

from aiida import orm

from aiida_mofal.calculations.mantle import choose_mantle_depth, initial_mantle_depth

__all__ = ('MANTLE_AUTO_KEYS', 'MantleSteps', 'initial_mantle_depth')

#: settings of ``extract`` read only by the choice, kept out of the scan's settings node
MANTLE_AUTO_KEYS = ('mantle_force_threshold', 'mantle_depths', 'mantle_samples')


class MantleSteps:
    """Choose the cycle's mantle depth by force matching (``ClusterCampaignWorkChain`` mixin)."""

    def _choose_mantle(self, extract: dict):
        """Set ``ctx.mantle`` (the scan calcfunction's ``mantle`` input, or nothing); an exit code on failure."""
        self.ctx.mantle = {}
        settings = self.ctx.settings['extract']
        if settings['mantle_depth'] != 'auto':
            return None
        targets = sorted(self.inputs.targets.items())
        options = {key: settings[key] for key in MANTLE_AUTO_KEYS}
        options.update(vacuum=extract['vacuum'], cycle=self.ctx.cycle,
                       names={f'target_{i}': name for i, (name, _) in enumerate(targets)})  # fmt: skip
        structures = {f'target_{i}': structure for i, (_, structure) in enumerate(targets)}
        try:
            choice, node = choose_mantle_depth.run_get_node(self.ctx.model, orm.Dict(options), **structures)
        except Exception as error:  # noqa: BLE001 -- a named exit code, never an Excepted campaign
            return self.exit_codes.ERROR_INFERENCE.format(what='mantle', cycle=self.ctx.cycle, reason=str(error))
        self.ctx.cycle_roles['mantle'] = node
        self.ctx.mantle = {'mantle': choice}
        worst = choice['max_error_ev_per_a']
        errors = ', '.join(f'{depth}: {1000 * value:.1f}' for depth, value in worst.items() if value is not None)
        self.report(
            f'cycle {self.ctx.cycle}: mantle depth {choice["chosen_depth"]} (worst core-atom force RMSE per depth, '
            f'meV/Å: {errors}; threshold {1000 * choice["threshold_ev_per_a"]:.0f})'
        )
        return None
