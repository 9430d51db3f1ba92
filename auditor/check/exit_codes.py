"""Exit codes CI systems can rely on, owned by the check (whose verdicts they encode); every
`audit` command uses the same four, and `audit query` one more when its time limit stops it
(124, what ``timeout(1)`` exits with)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # a check failed / something was flagged
EXIT_USAGE = 2  # bad arguments, unusable input
EXIT_SKIPPED = 3  # the job ran, but some input records were skipped (see the printed errors)
EXIT_TIMEOUT = 124  # a time limit stopped the command (audit query --timeout)

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_SKIPPED", "EXIT_TIMEOUT", "EXIT_USAGE"]
