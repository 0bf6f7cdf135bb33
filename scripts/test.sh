#!/usr/bin/env bash
# Install if needed, then run the test suite (GPU tests skip with their reason on CPU machines).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
