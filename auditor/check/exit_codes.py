"""Exit codes CI systems can rely on, owned by the check (whose verdicts they encode); every
`audit` command uses the same four."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1  # a check failed / something was flagged
EXIT_USAGE = 2  # bad arguments, unusable input
EXIT_SKIPPED = 3  # the job ran, but some input records were skipped (see the printed errors)

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_SKIPPED", "EXIT_USAGE"]
