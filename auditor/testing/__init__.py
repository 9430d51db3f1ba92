"""Test helpers shipped with auditor, for its own tests and for code built on it.

- `models`: tiny random Hugging Face models of every supported architecture and a small
  in-memory tokenizer (no download), for fast exactness tests.
- `audits`: synthetic trajectories and audits (made-up scores, no model) for store, report and
  CLI tests and the store benchmark.
"""

from __future__ import annotations

from auditor.testing.models import TINY_ARCHS, tiny_model, tiny_tokenizer

__all__ = ["TINY_ARCHS", "tiny_model", "tiny_tokenizer"]
