"""The page: self-contained, data embedded safely, fast on large audits, and the same export as the store."""

from __future__ import annotations

import html.parser
import json
import re
import time

import pytest

from auditor.report.data import report_data
from auditor.report.html import embed_json, render_html, write_report
from auditor.trajectory import Message, ToolCall, Trajectory
from helpers.report import example, synthetic_audit

DATA_RE = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)


def embedded(page: str) -> dict:
    (payload,) = DATA_RE.findall(page)
    return json.loads(payload)


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data") and value is not None:
                self.refs.append((tag, name, value))


def test_page_is_self_contained(injected_audit, tmp_path):
    page = write_report([injected_audit], tmp_path / "r.html").read_text(encoding="utf-8")
    parser = _Refs()
    parser.feed(page)
    assert not parser.refs, f"external references: {parser.refs}"
    assert "link" not in parser.tags and "iframe" not in parser.tags and "img" not in parser.tags
    scripts = re.findall(r"<script([^>]*)>", page)
    assert all("src" not in s for s in scripts)
    assert not re.search(r"https?://", page.split('id="report-data"')[0]), "a URL in the page's own markup/CSS/JS"
    assert not re.search(r"@import|url\(\s*['\"]?(?!data:)", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_embedded_json_parses_back(injected_audit):
    data = report_data([injected_audit])
    page = render_html(data)
    assert embedded(page) == json.loads(json.dumps(data))
    assert "__DATA__" not in page and "/*__JS__*/" not in page and "/*__CSS__*/" not in page


def test_hostile_text_cannot_close_the_script():
    evil = "</script><script>alert(1)</script><!-- & \u2028 ]]>"
    traj = Trajectory(id="evil", messages=[
        Message(role="system", content="Be careful."),
        Message(role="user", content="Look up the page."),
        Message(role="assistant", tool_calls=[ToolCall(id="c1", name="fetch", arguments={"url": "http://x.example"})]),
        Message(role="tool", tool_call_id="c1", content=evil),
        Message(role="assistant", tool_calls=[ToolCall(id="c2", name="send_email", arguments={"to": evil})]),
    ])
    page = render_html(report_data([synthetic_audit(traj)], title=evil))
    assert page.count("</script>") == 2  # the data block's and the code's, nothing from the data
    assert "<script>alert" not in page
    data = embedded(page)
    assert data["runs"][0]["trajectory"]["messages"][3]["content"] == evil
    assert data["title"] == evil
    assert json.loads(embed_json({"s": evil}))["s"] == evil


def test_many_runs_in_one_page():
    a = synthetic_audit(example("injected_email"), run_id="r1")
    b = synthetic_audit(example("benign_budget_email"), run_id="r2")
    data = embedded(render_html(report_data([a, b])))
    assert [r["run"]["run_id"] for r in data["runs"]] == ["r1", "r2"]
    assert "injected-inbox-forward" in data["title"] and "benign-budget-email" in data["title"]


def test_large_audit_renders_in_bounded_time(tmp_path):
    audit = synthetic_audit(example("injected_email"), pad_words=5000)
    assert all(a.context_end > 5000 for a in audit.actions[1:])
    start = time.perf_counter()
    path = write_report([audit], tmp_path / "big.html")
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, f"writing a 5k-token report took {elapsed:.1f}s"
    size = path.stat().st_size
    assert size < 3_000_000, f"{size} bytes"
    data = embedded(path.read_text(encoding="utf-8"))
    assert len(data["runs"][0]["actions"][1]["view"]["token_scores"]) == audit.actions[1].context_end


def test_report_from_store_embeds_the_stores_export(tmp_path, injected_audit):
    from auditor.report.build import ReportError, report_from_store
    from auditor.report.export import action_export
    from auditor.store import Store

    from auditor.check import check_audit, default_policy

    db = tmp_path / "a.duckdb"
    support = default_policy().with_overrides(decide="support")  # the synthetic shares decide exactly
    with Store(db) as store:
        store.record_audit(injected_audit, check_audit(injected_audit, support).verdicts, policy=support)
    send = injected_audit.actions[1].action.id
    with Store(db, read_only=True) as store:
        by_run = report_from_store(store, injected_audit.run.run_id, tmp_path / "run.html")
        by_traj = report_from_store(store, injected_audit.trajectory.id, tmp_path / "traj.html")
        by_action = report_from_store(store, send, tmp_path / "action.html")
        data = embedded(by_run.path.read_text(encoding="utf-8"))
        for entry in data["runs"][0]["actions"]:
            stored = json.loads(json.dumps(action_export(store, entry["id"], run_id=injected_audit.run.run_id), default=str))
            assert entry["export"] == stored
        with pytest.raises(ReportError, match="neither a file nor a run"):
            report_from_store(store, "nope", tmp_path / "x.html")
    assert by_run.selected is None and by_traj.audits[0].trajectory.id == injected_audit.trajectory.id
    assert by_action.selected == send and by_action.url.endswith("#action=" + send.replace(":", "%3A"))
    assert embedded(by_action.path.read_text(encoding="utf-8"))["runs"][0]["actions"][1]["verdict"]["status"] == "unsupported"


def test_page_carries_each_arguments_explanation(tmp_path):
    """Per-argument supports, decisive flags and top drivers reach the page (the export, embedded),
    and the page's script draws an Arguments section from them."""
    from auditor.report.data import check_verdicts
    from auditor.testing.audits import synthetic_audit as synthetic_with_arguments

    audit = synthetic_with_arguments(example("injected_email"), arguments=True)
    page = write_report([audit], tmp_path / "r.html", verdicts=check_verdicts(audit)).read_text(encoding="utf-8")
    send = embedded(page)["runs"][0]["actions"][1]
    att = audit.actions[1]
    args = send["export"]["arguments"]
    assert [g["name"] for g in args] == [g.name for g in att.arguments] == ["to", "subject", "body"]
    assert args[0]["value"] == "archive@exfil.example" and args[0]["decisive"] and not args[2]["decisive"]
    assert [d["segment_id"] for d in args[0]["drivers"]] == [d.segment_id for d in att.arguments[0].drivers[:3]]
    assert send["verdict"]["argument"] == "to"
    assert send["verdict"]["support"] == pytest.approx(args[0]["support"], abs=1e-6)
    assert 'id="arguments-panel"' in page and "<h3>Arguments" in page and 'class="arg-driver"' in page
