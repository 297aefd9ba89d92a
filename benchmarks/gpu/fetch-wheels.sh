#!/usr/bin/env bash
# Download the wheels of requirements.txt for the GPU machine (Python ${PYVER:-3.12}, manylinux x86_64) into
# benchmarks/gpu/wheels/, where run.sh installs them from with no network. torch itself is NOT downloaded:
# the GPU machine's own CUDA build is used (run.sh makes its environment with --system-site-packages).
set -euo pipefail
cd "$(dirname "$0")"
PYVER=${PYVER:-3.12}
mkdir -p wheels
python3 -m pip download --only-binary=:all: --python-version "$PYVER" --platform manylinux2014_x86_64 \
  --platform manylinux_2_28_x86_64 --platform any --no-deps -d wheels -r requirements.txt
du -sh wheels
