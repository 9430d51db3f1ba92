"""Progress of a long command on stderr, whatever stdout carries (tables or ``--json``).

On a terminal: a rich spinner line saying which trajectory is being audited. Elsewhere (CI logs,
a pipe, a test): one plain line per step, so a long run is never silent. ``--quiet`` turns both
off; errors are printed regardless.
"""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape

from auditor.cli.app import err_console


class Progress:
    """``start(n)``, then ``before(tid, k, n)`` / ``after(tid, k, n, note)`` per trajectory, then ``stop()``."""

    def __init__(self, quiet: bool = False, what: str = "auditing") -> None:
        self.quiet = quiet
        self.what = what
        self.live = err_console.is_terminal and not quiet
        self._status: Any = None
        self._t0 = time.perf_counter()
        self._step0 = self._t0

    def __enter__(self) -> "Progress":
        if self.live:
            self._status = err_console.status(self.what)
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def note(self, text: str) -> None:
        """A line that stays (e.g. what is about to happen: the model loads)."""
        if not self.quiet:
            err_console.print(f"[dim]{escape(text)}[/]", highlight=False, soft_wrap=True)

    def before(self, tid: str, k: int, n: int) -> None:
        self._step0 = time.perf_counter()
        if self._status is not None:
            self._status.update(f"{self.what} {escape(tid)} ({k}/{n})")
        elif not self.quiet:
            err_console.print(f"[dim][{k}/{n}] {self.what} {escape(tid)}…[/]", highlight=False, soft_wrap=True)

    def after(self, tid: str, k: int, n: int, note: str = "") -> None:
        if self.quiet:
            return
        took = time.perf_counter() - self._step0
        err_console.print(f"[dim][{k}/{n}] {escape(tid)}: {escape(note) or 'done'} ({took:.1f} s)[/]",
                          highlight=False, soft_wrap=True)
