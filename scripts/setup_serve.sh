#!/usr/bin/env bash
# Create .venv-serve: the environment `ndr-serve` runs in (PyTriton, its bundled
# tritonserver, tritonclient and the torch-free ndr-edge runtime with ONNX Runtime).
#
# Why a second venv: PyTriton 0.7's Python-backend stub needs a CPython built with a
# shared libpython whose multiprocessing matches the stub's. Debian's /usr/bin/python3
# (3.11.2) works; a pyenv CPython 3.11.7 does not (PyTriton issue #51: the stub and that
# interpreter's multiprocessing disagree) and pyenv's 3.12 has no shared libpython. So
# this venv is made from the system interpreter, whatever `python3` resolves to.
#
# Idempotent: a second run only checks (quick). Override the interpreter with
# SERVE_PYTHON=/path/to/python3 and the folder with SERVE_VENV=path.
# Exit status: 0 ready; 1 the interpreter or venv module is missing; 2 pip failed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${SERVE_PYTHON:-/usr/bin/python3}
VENV=${SERVE_VENV:-.venv-serve}

if [ ! -x "$PY" ]; then
  echo "setup_serve: $PY not found; install the distribution's python3 (apt-get install -y python3 python3-venv)" \
       "or set SERVE_PYTHON to a CPython 3.8-3.11 with a shared libpython" >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(0 if (3, 8) <= sys.version_info[:2] <= (3, 12) else 1)'; then
  echo "setup_serve: $PY is Python $("$PY" -c 'import platform; print(platform.python_version())');" \
       "PyTriton 0.7 supports 3.8-3.12; set SERVE_PYTHON to another interpreter" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV"; then
    rm -rf "$VENV"
    echo "setup_serve: '$PY -m venv' failed; on Debian/Ubuntu: apt-get update && apt-get install -y python3-venv" >&2
    exit 1
  fi
fi

stamp="$VENV/.ndr-edge-serve-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  {
    "$VENV/bin/python" -m pip install --quiet --upgrade pip &&
    # the runtime is torch-free: ndr-edge with ONNX Runtime, plus the serve extra
    # (nvidia-pytriton with its tritonserver, tritonclient[grpc,http])
    "$VENV/bin/python" -m pip install --quiet -e ".[ort,serve]"
  } || { echo "setup_serve: pip install failed (see above); nothing marked as installed" >&2; exit 2; }
  touch "$stamp"
fi

"$VENV/bin/python" - <<'EOF' || { rm -f "$stamp"; echo "setup_serve: the serve environment does not import; rerun" >&2; exit 2; }
import ndr_edge.runtime, pytriton, tritonclient.grpc, tritonclient.http  # noqa: F401
from pytriton.triton import Triton  # noqa: F401
EOF
echo "setup_serve: $VENV ready ($("$VENV/bin/python" -c 'import platform; print(platform.python_version())')," \
     "nvidia-pytriton $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("nvidia-pytriton"))'))"
