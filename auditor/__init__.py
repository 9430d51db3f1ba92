"""auditor: explain what drove each action of an LLM agent.

Data flow, one subpackage per stage: ``collectors`` (spans → trajectories) → ``segments``
(trajectory → segments → tokens) → ``attribution`` (FlashTrace) → ``store`` (DuckDB) →
``cli`` / report. The shared contract lives at the top: ``trajectory`` and ``results``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("auditor")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
