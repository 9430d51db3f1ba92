"""The installed package's version (``0.0.0+source`` in a source tree without install)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("auditor")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"
