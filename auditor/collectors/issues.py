"""What loading reports: `LoadIssue` (one unusable record and exactly where it is) and
`LoadResult` (what a file yielded). A leaf module: every reader and assembler in
`auditor.collectors` reports through these, so they import nothing from the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord
    from auditor.trajectory import Trajectory


@dataclass(frozen=True)
class LoadIssue:
    """One thing that could not be used, and exactly where it is."""

    file: str
    message: str
    line: int | None = None
    span_id: str | None = None
    field: str | None = None
    severity: str = "error"  # "error": a record was skipped; "warning": kept, but changed; "info": a note

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.span_id:
            where += f" span {self.span_id}"
        if self.field:
            where += f" field {self.field}"
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    trajectories: list["Trajectory"] = field(default_factory=list)
    issues: list[LoadIssue] = field(default_factory=list)
    spans: list["SpanRecord"] = field(default_factory=list)  # raw spans, kept so nothing captured is lost
    format: str = "unknown"

    @property
    def skipped(self) -> int:
        return sum(1 for i in self.issues if i.severity == "error")

    def extend(self, other: "LoadResult") -> None:
        self.trajectories.extend(other.trajectories)
        self.issues.extend(other.issues)
        self.spans.extend(other.spans)
