"""Calcfunctions that grow data sets, so that every label stays linked to the job that made it."""

from aiida.engine import calcfunction

from aiida_mofal.data import DatasetData
from aiida_mofal.mlp.configurations import ConfigurationError


@calcfunction
def merge_datasets(**datasets: DatasetData) -> DatasetData:
    """Concatenate data sets in keyword order; their levels of theory and E0s must agree.

    Mixing labels from two levels of theory in one training set silently ruins a model, so it is an
    error here; convert or relabel first.
    """
    if not datasets:
        raise ConfigurationError('merge_datasets needs at least one data set.')
    names = list(datasets)
    reference = datasets[names[0]]
    frames = []
    energies: dict[str, float] = {}
    for name in names:
        node = datasets[name]
        if node.level_of_theory != reference.level_of_theory:
            raise ConfigurationError(
                f'data set {name!r} (pk {node.pk}) has level of theory {node.level_of_theory}, '
                f'but {names[0]!r} has {reference.level_of_theory}; only one level of theory per data set.'
            )
        for symbol, energy in node.isolated_atom_energies.items():
            if symbol in energies and energies[symbol] != energy:
                raise ConfigurationError(
                    f'data sets disagree on the isolated-atom energy of {symbol}: {energies[symbol]} vs {energy} eV.'
                )
            energies[symbol] = energy
        frames.extend(node.get_atoms())
    return DatasetData(frames, level_of_theory=reference.level_of_theory, isolated_atom_energies=energies)
