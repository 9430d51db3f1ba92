"""Durable appends shared by the JSONL exporter and the receiver."""

from __future__ import annotations

import os
from typing import IO


def flush_to_disk(fh: IO[str]) -> None:
    """Flush Python's buffer and fsync, so a clean shutdown loses no span (fsync may be
    unsupported, e.g. on some pipes: then the flush is all we can do)."""
    fh.flush()
    try:
        os.fsync(fh.fileno())
    except OSError:
        pass
