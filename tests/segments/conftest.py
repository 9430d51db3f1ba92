"""Replay tests: a tokenizer with offsets (the embedded SmolLM2 tokenizer when it is provisioned,
else the word-level test tokenizer)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", params=["smollm2", "tiny"])
def replay_tokenizer(request):
    if request.param == "tiny":
        from auditor.testing import tiny_tokenizer

        return tiny_tokenizer()
    from auditor.model_registry import _is_converted, embedded_model_dir

    if not _is_converted(embedded_model_dir()):
        pytest.skip("the embedded model is not provisioned (run `audit models --provision`)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model_dir(), local_files_only=True)
