"""The HTML report: one self-contained page per audit, embedding per action the same export that
`audit show` prints (``auditor.store.export.audit_action_export``)."""

from __future__ import annotations

from auditor.report.data import action_view, check_verdicts, flow_summary, normalize_verdict, report_data, run_data
from auditor.report.html import render_html, write_report

__all__ = ["action_view", "check_verdicts", "flow_summary", "normalize_verdict", "report_data", "run_data", "render_html", "write_report"]
