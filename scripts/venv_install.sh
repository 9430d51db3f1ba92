#!/usr/bin/env bash
# Install packages into a venv with uv (parallel downloads: seconds where pip takes minutes), or
# with pip when uv cannot be had or fails. Usage: scripts/venv_install.sh VENV [pip install args...]
#
# torch is not installed this way: pip takes the CPU build from this machine's disk by exact version
# (uv does not read pip's configuration, and PyPI's torch is a CUDA build of several GB), so install
# it with pip first; here it is pinned to what is installed, and anything that would replace it
# makes uv fail, which hands the install to pip.
set -euo pipefail
venv=$1; shift
py="$venv/bin/python"
pip_q() {  # pip, quiet, without the local index's "Location ... is ignored" noise
  "$py" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location .* is ignored" || true; }
  return "${PIPESTATUS[0]}"
}
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$py" - >"$constraints" <<'PY'
import importlib.metadata as md
try:
    print(f"torch=={md.version('torch')}")
except md.PackageNotFoundError:
    pass
PY
if pip_q install -q uv && "$venv/bin/uv" pip install --python "$py" --constraint "$constraints" -q "$@"; then
  exit 0
fi
echo "venv_install: uv could not install $*; installing with pip" >&2
pip_q install -q "$@"
