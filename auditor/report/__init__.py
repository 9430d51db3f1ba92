"""The HTML report: one self-contained page per audit, embedding per action the same export that
`audit show` prints (``auditor.report.export``: store rows joined with the check's judgement)."""

from __future__ import annotations

from auditor.report.data import action_view, check_verdicts, flow_summary, normalize_verdict, report_data, run_data
from auditor.report.export import EXPORT_VERSION, action_export, audit_action_export, recorded_policy
from auditor.report.html import render_html, write_report

__all__ = ["EXPORT_VERSION", "action_export", "action_view", "audit_action_export", "check_verdicts", "flow_summary",
           "normalize_verdict", "recorded_policy", "render_html", "report_data", "run_data", "write_report"]
