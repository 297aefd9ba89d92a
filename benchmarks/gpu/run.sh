#!/usr/bin/env bash
# The GPU check, ready to run where a GPU exists: needs only a Python with a CUDA build of torch, plus the wheels
# of requirements.txt in benchmarks/gpu/wheels/ (fetch-wheels.sh; no network needed here). About 8 minutes.
#   bash benchmarks/gpu/run.sh                 # on the GPU machine -> benchmarks/gpu/results.json
#   PYTHON=.venv/bin/python bash benchmarks/gpu/run.sh --smoke   # anywhere, on a CPU: small sizes
# Extra arguments go to gpu_check.py (--budget SECONDS, --channels N, --device cuda|cpu).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$HERE/results.json}

if ! "$PYTHON" -c 'import mace, ase, e3nn' 2>/dev/null; then
  [ -d "$HERE/wheels" ] || { echo "run.sh: no mace in $PYTHON and no $HERE/wheels (run fetch-wheels.sh)" >&2; exit 2; }
  ENV=${GPU_ENV:-$HERE/.env}
  [ -x "$ENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$ENV"   # keeps the machine's CUDA torch
  "$ENV/bin/python" -m pip install -q --no-index --find-links "$HERE/wheels" --no-deps "$HERE"/wheels/*.whl
  PYTHON=$ENV/bin/python
fi
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
exec "$PYTHON" "$HERE/gpu_check.py" --out "$OUT" "$@"
