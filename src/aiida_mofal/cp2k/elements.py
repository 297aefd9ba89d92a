"""What CP2K can do for an element: GFN1-xTB parameters, basis sets and pseudopotentials, atomic spin states."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ase.data import atomic_numbers

__all__ = ('GROUND_STATE_MULTIPLICITY', 'XTB_MAX_Z', 'atom_multiplicity', 'available_names')

# GFN1-xTB is parametrised for H to Rn (Grimme et al., JCTC 2017); CP2K ships those parameters.
XTB_MAX_Z = 86

# Spin multiplicity 2S+1 of the free atom's ground state (Hund's rules; NIST atomic spectra database).
GROUND_STATE_MULTIPLICITY = {
    'H': 2, 'He': 1, 'Li': 2, 'Be': 1, 'B': 2, 'C': 3, 'N': 4, 'O': 3, 'F': 2, 'Ne': 1,
    'Na': 2, 'Mg': 1, 'Al': 2, 'Si': 3, 'P': 4, 'S': 3, 'Cl': 2, 'Ar': 1,
    'K': 2, 'Ca': 1, 'Sc': 2, 'Ti': 3, 'V': 4, 'Cr': 7, 'Mn': 6, 'Fe': 5, 'Co': 4, 'Ni': 3, 'Cu': 2, 'Zn': 1,
    'Ga': 2, 'Ge': 3, 'As': 4, 'Se': 3, 'Br': 2, 'Kr': 1,
    'Rb': 2, 'Sr': 1, 'Y': 2, 'Zr': 3, 'Nb': 6, 'Mo': 7, 'Tc': 6, 'Ru': 5, 'Rh': 4, 'Pd': 1, 'Ag': 2, 'Cd': 1,
    'In': 2, 'Sn': 3, 'Sb': 4, 'Te': 3, 'I': 2, 'Xe': 1,
    'Cs': 2, 'Ba': 1,
    'La': 2, 'Ce': 1, 'Pr': 4, 'Nd': 5, 'Pm': 6, 'Sm': 7, 'Eu': 8, 'Gd': 9, 'Tb': 6, 'Dy': 5, 'Ho': 4, 'Er': 3,
    'Tm': 2, 'Yb': 1, 'Lu': 2,
    'Hf': 3, 'Ta': 4, 'W': 5, 'Re': 6, 'Os': 5, 'Ir': 4, 'Pt': 3, 'Au': 2, 'Hg': 1,
    'Tl': 2, 'Pb': 3, 'Bi': 4, 'Po': 3, 'At': 2, 'Rn': 1,
    'Fr': 2, 'Ra': 1, 'Ac': 2, 'Th': 3, 'Pa': 4, 'U': 5, 'Np': 6, 'Pu': 7, 'Am': 8, 'Cm': 9, 'Bk': 6, 'Cf': 5,
    'Es': 4, 'Fm': 3, 'Md': 2, 'No': 1, 'Lr': 2,
}  # fmt: skip
# Ground terms of the lanthanides and actinides after NIST ASD, e.g. Ce 4f 5d 6s2 1G4 (singlet), Gd 4f7 5d 6s2
# 9D2 (nonet). Every element H-Lr is here, so no element the engines accept ends a labelling run without its
# free-atom reference; beyond Lr nothing is chemistry a MOF needs (and CP2K has no potentials for it).


def atom_multiplicity(symbol: str) -> int:
    """Return the ground-state spin multiplicity of the free atom ``symbol``."""
    try:
        return GROUND_STATE_MULTIPLICITY[symbol]
    except KeyError:
        raise ValueError(
            f'no ground-state multiplicity known for element {symbol!r} (known: H to Lr); '
            'no free-atom reference energy can be computed for it.'
        ) from None


@lru_cache(maxsize=32)
def available_names(path: str) -> dict[str, frozenset[str]]:
    """Map each element to the basis-set or potential names (and aliases) that the CP2K data file defines.

    Parses lines such as ``Zn DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q12``; comment lines are skipped.
    """
    names: dict[str, set[str]] = {}
    pattern = re.compile(r'^\s*([A-Z][a-z]?)\s+(\S+.*)$')
    for line in Path(path).read_text(errors='replace').splitlines():
        if line.lstrip().startswith('#'):
            continue
        match = pattern.match(line)
        if match and match.group(1) in atomic_numbers:
            fields = match.group(2).split()
            if fields and not re.match(r'^[-+\d.]', fields[0]):
                names.setdefault(match.group(1), set()).update(fields)
    return {element: frozenset(found) for element, found in names.items()}
