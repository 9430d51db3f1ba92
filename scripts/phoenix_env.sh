#!/usr/bin/env bash
# Create .venv-phoenix: Arize Phoenix (PyPI arize-phoenix) in its own environment, so its ~250
# packages (FastAPI, SQLAlchemy, pandas, its own grpcio, ...) never touch the core .venv; pip could
# not resolve it together with auditor's pins. Idempotent: a stamp file records a finished
# install; rerunning is a no-op. About 2-3 minutes and 850 MB, once.
#
# The interop test (tests/interop/test_phoenix.py) and scripts/phoenix_server.py start
# `phoenix serve` from it, offline (scripts/phoenix_server.py sets the environment that keeps it
# from any public-internet request).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${PHOENIX_VENV:-.venv-phoenix}
PHOENIX_VERSION=${PHOENIX_VERSION:-20.26.1}
STAMP="$VENV/.installed-arize-phoenix-$PHOENIX_VERSION"
PY=${PY:-$(command -v python3.11 || command -v python3)}

if [[ -f "$STAMP" ]]; then
  echo "phoenix env: $VENV ready (arize-phoenix $PHOENIX_VERSION)"
  exit 0
fi

start=$(date +%s)
echo "phoenix env: creating $VENV with arize-phoenix==$PHOENIX_VERSION (about 2-3 minutes, once)"
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
pip_q() {  # pip, quiet, without the local index's "Location ... is ignored" noise
  "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location .* is ignored" || true; }
  return "${PIPESTATUS[0]}"
}
pip_q install -q --upgrade pip
bash scripts/venv_install.sh "$VENV" "arize-phoenix==$PHOENIX_VERSION"  # uv, or pip

# Check: the server's entry point imports.
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import phoenix.server.main  # noqa: F401
print(f"phoenix env: arize-phoenix {md.version('arize-phoenix')}")
PY
touch "$STAMP"
echo "phoenix env: ready in $(( $(date +%s) - start )) s"
