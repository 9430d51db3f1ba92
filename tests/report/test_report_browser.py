"""The report in headless Chromium (Debian's `chromium`, installed by the test set-up): select an
action by URL fragment, by mouse and by keyboard, and read the drivers panel."""

from __future__ import annotations

import html.parser
import json
import re

import pytest

from auditor.report.html import write_report
from auditor.report.browser import page_url, run_chromium, screenshot
from helpers.cdp import dump_dom
from helpers.report import example, synthetic_audit
from auditor.check import default_policy

SUPPORT = default_policy().with_overrides(decide="support")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def injected_page(tmp_path_factory, injected_audit):
    from auditor.report.data import check_verdicts

    path = tmp_path_factory.mktemp("report") / "injected.html"
    # the support rule: the synthetic shares decide exactly (the verdict badge is what is tested)
    return write_report([injected_audit], path, verdicts=check_verdicts(injected_audit, SUPPORT))


class _Drivers(html.parser.HTMLParser):
    """Rows of the drivers table, the verdict badge and the selected action, from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.verdict: str | None = None
        self.selected: str | None = None
        self.listed_selected: list[str] = []
        self.in_drivers = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.selected = a.get("data-selected-action")
        if tag == "table" and a.get("id") == "drivers":
            self.in_drivers = True
        if self.in_drivers and tag == "tr" and "data-segment-id" in a:
            self.rows.append(a)
        if a.get("id") == "verdict":
            self.verdict = a.get("data-status")
        if tag == "li" and a.get("aria-selected") == "true":
            self.listed_selected.append(a.get("data-action-id"))

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_drivers = False


def test_fragment_selects_the_action_and_the_drivers_panel_shows_its_drivers(chromium, injected_page, injected_audit):
    send = injected_audit.actions[1]
    dom = dump_dom(injected_page, send.action.id)
    p = _Drivers()
    p.feed(dom)
    assert p.selected == send.action.id and p.listed_selected == [send.action.id]
    assert p.verdict == "unsupported"
    assert [r["data-segment-id"] for r in p.rows] == [d.segment_id for d in send.drivers]
    assert [int(r["data-rank"]) for r in p.rows] == list(range(1, len(send.drivers) + 1))
    assert p.rows[0]["data-kind"] == "tool_output"
    assert float(p.rows[0]["data-share"]) == pytest.approx(send.drivers[0].share, abs=1e-6)
    assert 'id="flow"' in dom and 'id="heatmap"' in dom
    # the judged support, the number `audit check` and `audit show` give for this action
    judged = re.search(r'id="judged-support">([^<]*)<', dom).group(1)
    assert "support " in judged and "authority" in judged


def test_click_and_keyboard_select_actions(chromium, injected_page, injected_audit):
    from helpers.cdp import Browser

    ids = [a.action.id for a in injected_audit.actions]
    with Browser(page_url(injected_page)) as b:
        b.wait_for("document.body.dataset.ready === '1'")
        assert b.eval("document.body.dataset.selectedAction") == ids[0]  # the first action by default
        b.click(f'#actions li[data-action-id="{ids[1]}"]')
        b.wait_for(f"document.body.dataset.selectedAction === {json.dumps(ids[1])}")
        panel = b.eval("""(() => [...document.querySelectorAll('#drivers tbody tr')].map(r => ({
            id: r.dataset.segmentId, kind: r.dataset.kind, share: r.querySelector('.share').textContent}))
        )()""")
        assert [r["id"] for r in panel] == [d.segment_id for d in injected_audit.actions[1].drivers]
        assert panel[0]["kind"] == "tool_output" and panel[0]["share"].endswith("%")
        assert b.eval("document.getElementById('verdict').dataset.status") == "unsupported"
        assert b.eval("location.hash") == "#action=" + ids[1].replace(":", "%3A")
        # the tool output that drove it is tinted in the conversation
        assert b.eval(f"""document.querySelector('#conversation [data-seg="{injected_audit.actions[1].drivers[0].segment_id}"]')
                          .style.backgroundColor""")
        # keyboard: next action, then back
        b.key("ArrowDown", 40)
        b.wait_for(f"document.body.dataset.selectedAction === {json.dumps(ids[2])}")
        b.key("k", 75)
        b.wait_for(f"document.body.dataset.selectedAction === {json.dumps(ids[1])}")
        # clicking the call in the conversation selects its action
        b.click(f'#conversation .call[data-action-id="{ids[0]}"]')
        b.wait_for(f"document.body.dataset.selectedAction === {json.dumps(ids[0])}")
        # clicking a driver row opens its heatmap block
        first = injected_audit.actions[0].drivers[0].segment_id
        b.click(f'#drivers tr[data-segment-id="{first}"]')
        assert b.eval(f"""!document.querySelector('#heatmap .block[data-seg="{first}"]').classList.contains('closed')""")


def test_thousands_of_tokens_stay_responsive(chromium, tmp_path):
    from helpers.cdp import Browser

    audit = synthetic_audit(example("injected_email"), pad_words=5000)
    path = write_report([audit], tmp_path / "big.html")
    ids = [a.action.id for a in audit.actions]
    with Browser(page_url(path)) as b:
        b.wait_for("document.body.dataset.ready === '1'", timeout=30)
        timings = []
        for aid in ids[1:] + ids[:1] + ids[1:]:
            ms = b.eval(f"(() => {{ const t = performance.now(); window.auditorReport.select({json.dumps(aid)}, true);"
                        " document.body.offsetHeight; return performance.now() - t; })()")
            timings.append(ms)
        assert max(timings) < 1500, timings
        assert b.eval("document.body.dataset.selectedAction") == ids[-1]
        assert b.eval("document.querySelectorAll('#heatmap .toks span').length") > 0  # quiet blocks start closed
        ms = b.eval("(() => { const t = performance.now(); document.getElementById('toggle-all').click();"
                    " document.body.offsetHeight; return performance.now() - t; })()")
        assert ms < 3000, ms
        assert b.eval("document.querySelectorAll('#heatmap .toks span').length") >= audit.actions[-1].context_end


def test_screenshot_of_a_selected_action(chromium, injected_page, injected_audit, tmp_path):
    png = screenshot(injected_page, tmp_path / "shot.png", injected_audit.actions[1].action.id, size=(1000, 700))
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.slow
def test_report_of_the_injected_example_on_the_embedded_model(chromium, embedded_model, tmp_path):
    """End to end: replay on the embedded SmolLM2, write the report, open it on send_email."""
    from auditor.audit import Auditor
    from auditor.report.build import report_from_file

    auditor = Auditor(model=embedded_model, model_name="SmolLM2-135M-Instruct")
    result = report_from_file(example_path("injected_email"), tmp_path / "r.html", auditor=auditor)
    (audit,) = result.audits
    send = next(a for a in audit.actions if a.action.tool_name == "send_email")
    p = _Drivers()
    p.feed(dump_dom(result.path, send.action.id))
    assert p.selected == send.action.id
    assert [r["data-segment-id"] for r in p.rows] == [d.segment_id for d in send.drivers]
    assert p.verdict in {"supported", "unsupported"}


def example_path(name: str):
    from helpers.report import ROOT

    return ROOT / "examples" / f"{name}.jsonl"


@pytest.mark.parametrize("fragment", ["no-such-action", "%E0%A4%A"])
def test_unknown_or_malformed_fragment_falls_back_to_the_first_action(chromium, injected_page, injected_audit, fragment):
    proc = run_chromium(["--virtual-time-budget=5000", "--dump-dom", page_url(injected_page) + "#action=" + fragment], 90)
    dom = proc.stdout
    p = _Drivers()
    p.feed(dom)
    assert 'data-ready="1"' in dom
    assert p.selected == injected_audit.actions[0].action.id


def test_arguments_section_shows_each_arguments_support_and_drivers(chromium, tmp_path):
    from helpers.cdp import Browser

    from auditor.report.data import check_verdicts
    from auditor.testing.audits import synthetic_audit as synthetic_with_arguments

    audit = synthetic_with_arguments(example("injected_email"), arguments=True)
    path = write_report([audit], tmp_path / "args.html", verdicts=check_verdicts(audit))
    send = audit.actions[1]
    with Browser(page_url(path, send.action.id)) as b:
        b.wait_for("document.body.dataset.ready === '1'")
        rows = b.eval("""(() => [...document.querySelectorAll('#arguments tbody tr')].map(r => ({
            name: r.dataset.argument, top: r.dataset.segmentId, decisive: r.dataset.decisive,
            support: r.querySelector('.support').textContent,
            drivers: [...r.querySelectorAll('.arg-driver')].map(d => d.dataset.segmentId)})))()""")
        assert [r["name"] for r in rows] == ["to", "subject", "body"]
        assert [r["decisive"] for r in rows] == ["1", "0", "0"]
        for r, g in zip(rows, send.arguments):
            assert r["top"] == g.drivers[0].segment_id
            assert r["drivers"] == [d.segment_id for d in g.drivers[:2]]
            assert r["support"].endswith("%")
        # clicking an argument shows its top driver's segment in the conversation, as a driver row does
        top = send.arguments[0].drivers[0].segment_id
        b.click('#arguments tr[data-argument="to"] .arg-name')
        assert b.eval(f"""document.querySelector('#conversation [data-seg="{top}"]').classList.contains('flash')""")
        # a final answer has no arguments section
        b.eval(f"window.auditorReport.select({json.dumps(audit.actions[2].action.id)}, true)")
        assert b.eval("document.getElementById('arguments') === null")


def test_tool_definitions_show_as_segments_in_the_conversation(chromium, tmp_path):
    """The tools offered are a block of the conversation, one segment per definition, tinted by
    its share and counted in the block's heat like a message; their driver rows have their kind."""
    from helpers.cdp import Browser

    from auditor.audit import Auditor
    from auditor.testing import tiny_model, tiny_tokenizer

    audit = Auditor((tiny_model("llama"), tiny_tokenizer()), hops=1).audit(example("injected_email"))
    path = write_report([audit], tmp_path / "tools.html")
    send = next(a for a in audit.actions if a.action.tool_name == "send_email")
    defs = [s for s in audit.segments if s.kind.value == "tool_definition"]
    with Browser(page_url(path, send.action.id)) as b:
        b.wait_for("document.body.dataset.ready === '1'")
        got = b.eval("""(() => ({
            names: [...document.querySelectorAll('#msg-tools .tooldef .c-name')].map(e => e.textContent),
            segs: [...document.querySelectorAll('#msg-tools .seg')].map(e => ({id: e.dataset.seg, bg: e.style.backgroundColor})),
            heat: document.querySelector('#msg-tools [data-msg-heat]').textContent,
            kinds: [...document.querySelectorAll('#drivers tr[data-kind="tool_definition"]')].map(r => r.dataset.segmentId),
            first: document.querySelector('#conversation .msg').id}))()""")
    assert got["first"] == "msg-tools"  # before the messages, where the prompt has them
    assert got["names"] == [t.name for t in audit.trajectory.tools]
    assert [s["id"] for s in got["segs"]] == [s.id for s in defs]
    shares = {d.segment_id: d.share for d in send.drivers}
    assert all(bool(s["bg"]) == (shares[s["id"]] > 0.004 * max(shares.values())) for s in got["segs"])
    assert got["heat"].startswith("drives ")
    assert sorted(got["kinds"]) == sorted(s.id for s in defs)
