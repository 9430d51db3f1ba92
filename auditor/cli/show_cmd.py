"""`audit show ACTION_ID`: one action in the terminal, from the same export the HTML report reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from auditor.cli.app import EXIT_USAGE, app, console, err_console
from auditor.cli.query_cmd import DB_HELP, open_store

# Background per strength level of the strongest tokens (weakest first).
_LEVELS = ("black on yellow", "black on dark_orange", "bold white on red")


def segment_text(seg: dict[str, Any], window: int = 240) -> Text:
    """The segment's text with its strongest tokens highlighted (3 levels by score)."""
    tokens = seg.get("tokens") or []
    if not tokens:
        return Text(seg.get("text") or "", style="dim")
    strongest = set(seg.get("strongest") or [])
    top = max(seg.get("max_score") or 0.0, 1e-12)
    lo, hi = 0, len(tokens)
    if len(tokens) > window:  # centre the window on the strongest token
        best = max(range(len(tokens)), key=lambda k: tokens[k]["score"])
        lo = max(0, min(best - window // 2, len(tokens) - window))
        hi = lo + window
    out = Text()
    if lo > 0:
        out.append("… ", style="dim")
    for t in tokens[lo:hi]:
        style = ""
        if t["i"] in strongest:
            level = min(int(t["score"] / top * len(_LEVELS)), len(_LEVELS) - 1)
            style = _LEVELS[level]
        out.append(t.get("display", t["text"]), style=style)
    if hi < len(tokens):
        out.append(" …", style="dim")
    return out


def short_value(value: Any, width: int = 26) -> str:
    """An argument's value on one line, cut to ``width`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _delta(causal: list[dict[str, Any]], variant: str) -> str:
    c = next((c for c in causal or [] if c.get("variant") == variant and c.get("driver_of") is None), None)
    return "–" if c is None else f"{c['delta']:+.1f}"


def arguments_table(arguments: list[dict[str, Any]]) -> Table:
    """One row per explained argument: its value, support, whether it is decisive, its causal
    deltas (nats lost when the user's request was neutralised / its top data driver removed), its
    top driver."""
    table = Table(title="arguments", title_justify="left",
                  caption="◆ decisive: `audit check` judges the call by these  ·  Δ: nats the value lost with the "
                          "user's request neutralised / its top data driver removed",
                  caption_justify="left")
    for col, kw in (("argument", {"overflow": "fold"}), ("value", {"overflow": "ellipsis", "no_wrap": True, "max_width": 26}),
                    ("support", {"justify": "right"}), ("◆", {}), ("Δ request", {"justify": "right"}),
                    ("Δ driver", {"justify": "right"}), ("top driver", {"overflow": "fold", "min_width": 18})):
        table.add_column(col, **kw)
    for g in arguments:
        top = (g.get("drivers") or [None])[0]
        driver = f"{top['share']:.1%} {escape(top['label'] or top['segment_id'])} [dim]{top['kind']}[/]" if top else ""
        support = "–" if g.get("support") is None else f"{g['support']:.2f}"
        table.add_row(escape(g["name"]), escape(short_value(g.get("value"))), support,
                      "[bold]◆[/]" if g.get("decisive") else "", _delta(g.get("causal", []), "neutral_request"),
                      _delta(g.get("causal", []), "drop_top_data"), driver)
    return table


def judged_line(data: dict[str, Any]) -> str:
    """The export's judgement in one line: the verdict's probability and threshold (or, under the
    support rule, the threshold), the judged support and what it was judged on, the whole call's
    support and the shares behind it."""
    on = f"argument {data['argument']}" if data.get("argument") else "the whole call"
    if data.get("probability") is not None:
        status = data.get("status")
        verdict = ("not checked (" + data.get("policy", "default") + " policy ignores it)" if status == "ignored"
                   else "unsupported" if status == "failed" else "supported")
        call = data.get("action_support")
        return (f"p(unsupported) {data['probability']:.2f}, threshold {data['probability_threshold']:.2f}: {verdict}"
                f"  ·  judged on {on} ({data.get('verdict_model')} verdict)  ·  support {data['support']:.2f}"
                + (f" (whole call {call:.2f})" if data.get("argument") and call is not None else ""))
    call = data.get("action_support")
    line = (f"support {data['support']:.2f} judged on {on}"
            + (f" (whole call {call:.2f})" if data.get("argument") and call is not None else "")
            + f"  ·  authority {data['authority_share']:.1%}, data {data['data_share']:.1%}")
    status = data.get("status")
    if status == "ignored":
        return line + f"  ·  not checked ({data.get('policy', 'default')} policy ignores it)"
    verdict = "unsupported" if status == "failed" else "supported"
    return line + f"  ·  threshold {data['threshold']:.2f}: {verdict}"


def request_line(ctx: dict[str, Any]) -> str:
    """Which model call the action came from: ``request 2 of 5 (req2) · sent 10:01:00 · span …``."""
    meta = ctx.get("metadata") or {}
    where = [f"request {ctx['request']} of {ctx['requests']} ({ctx['id']})"]
    if meta.get("sent_at"):
        where.append(f"sent {meta['sent_at']}")
    if meta.get("span_id"):
        where.append(f"span {meta['span_id']}")
    if meta.get("line") is not None:
        where.append(f"{Path(str(meta.get('file', ''))).name or 'log'} line {meta['line']}")
    return "  ·  ".join(where)


def context_table(ctx: dict[str, Any], drivers: list[dict[str, Any]], width: int = 70) -> Table:
    """What the request was sent, one row per message, and how much of the action's input mass each
    message's segments hold (the reply, last, holds the action)."""
    share: dict[int, float] = {}
    for d in drivers:
        if d.get("message_index") is not None:
            share[d["message_index"]] = share.get(d["message_index"], 0.0) + d["share"]
    table = Table(title=f"context: what request {ctx['request']} of {ctx['requests']} was sent, then its reply",
                  title_justify="left")
    for col, kw in (("#", {"justify": "right"}), ("role", {}), ("chars", {"justify": "right"}),
                    ("drove", {"justify": "right"}), ("text", {"overflow": "ellipsis", "no_wrap": True,
                                                           "max_width": width})):
        table.add_column(col, **kw)
    last = len(ctx["messages"]) - 1
    for m in ctx["messages"]:
        i = m["index"]
        text = " ".join((m.get("content") or "").split()) or ", ".join(c["name"] for c in m.get("tool_calls") or [])
        drove = "reply" if i == last else (f"{share[i]:.1%}" if i in share else "")
        table.add_row(str(i), m["role"], str(len(m.get("content") or "")), drove, escape(text[: width * 2]))
    return table


def render_export(data: dict[str, Any]) -> Group:
    a, run = data["action"], data["run"]
    ctx = data.get("context")
    head = Text()
    head.append(f"{a['id']}", style="bold")
    head.append(f"  {a['kind']}  ", style="dim")
    head.append(a["summary"])
    head.append(f"\ntrajectory {data['trajectory_id']}  ·  run {run['run_id']} ({run['model']}, {run['method']}, "
                f"{run['hops']} hop{'s' if run['hops'] != 1 else ''})", style="dim")
    if ctx:
        head.append("\n" + request_line(ctx))
    head.append("\n" + judged_line(data))
    for line in data.get("evidence") or []:
        head.append("\n  · " + line, style="dim")
    parts: list[Any] = [Panel(head, title="action", title_align="left")]
    if ctx:
        parts.append(context_table(ctx, data["drivers"]))

    drivers = Table(title="drivers", title_justify="left")
    for col, kw in (("#", {"justify": "right"}), ("share", {"justify": "right"}), ("", {}), ("kind", {}),
                    ("segment", {"overflow": "fold"})):
        drivers.add_column(col, **kw)
    for d in data["drivers"]:
        bar = "█" * max(1, round(d["share"] * 20)) if d["share"] > 0 else ""
        drivers.add_row(str(d["rank"]), f"{d['share']:.1%}", f"[cyan]{bar}[/]", d["kind"],
                        escape(d["label"] or d["segment_id"]))
    parts.append(drivers)
    if data.get("arguments"):
        parts.append(arguments_table(data["arguments"]))
    if data.get("provenance"):
        prov = Text("where the values occur\n", style="bold")
        for line in data["provenance"]:
            prov.append("  " + line + "\n")
        parts.append(prov)

    for seg in data["segments"]:
        title = f"#{seg['rank']} {escape(seg['label'] or seg['segment_id'])} [dim]{seg['kind']} · {seg['share']:.1%}[/]"
        parts.append(Panel(segment_text(seg), title=title, title_align="left"))

    if data["hops"]:
        hops = Table(title="hops", title_justify="left")
        hops.add_column("hop", justify="right")
        hops.add_column("flow to generated text", justify="right")
        hops.add_column("by kind", overflow="fold")
        for h in data["hops"]:
            by_kind = ", ".join(f"{k} {v:.0%}" for k, v in sorted(h["by_kind"].items(), key=lambda kv: -kv[1]))
            hops.add_row(str(h["hop"]), f"{h['flow_ratio']:.1%}", by_kind)
        parts.append(hops)
    for note in [*data.get("dropped", []), *data.get("unplaced", [])]:
        parts.append(Text(f"note: {note}", style="yellow"))
    return Group(*parts)


@app.command("show")
def show_command(
    action_id: str = typer.Argument(..., help="Action id, e.g. injected-inbox-forward:a1 (see action_drivers)."),
    run: str | None = typer.Option(None, "--run", help="Run id (default: the newest run that attributed it)."),
    trajectory: str | None = typer.Option(None, "--trajectory", help="Trajectory id, if the action id is ambiguous."),
    top: int = typer.Option(3, "--top", min=0, help="Top segments whose text is shown."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the action export (the HTML report's input) as JSON."),
) -> None:
    """Show one action: its drivers, and the text of the top segments with the strongest tokens highlighted.

    When the trajectory's model calls each had their own context (a coding agent re-sending the current files with every request), the action's request is named (request 3 of 5) and its context listed: every message that request was sent, with the share of the action's drivers each holds.

    For tool calls and code edits an arguments table follows the drivers: each argument's value,
    its support (authority / (authority + data) of its own drivers), ◆ where `audit check` judges
    the call by it (a decisive argument), and its top driver.

    The first line is `audit check`'s verdict: the calibrated probability that the user did not ask for the action and its threshold, with the evidence that decided it in words; the arguments table gives each argument's causal deltas (nats its value lost when the user's request was neutralised, and when its top data driver was removed) and a list says where each argument value occurs in the context (value provenance).

    The support shown is `audit check`'s judged support (of the decisive argument it rests on, else of the whole call), under the policy recorded with the action's verdict (else the default); the whole call's support follows it.

    --json prints the action export that the HTML report also reads (auditor.report.export.action_export).

    Example: audit show injected-inbox-forward:a1 --top 2
    """
    from auditor.report.export import action_export
    from auditor.store import StoreError

    store = open_store(db)
    with store:
        try:
            data = action_export(store, action_id, run_id=run, trajectory_id=trajectory, top=top)
        except StoreError as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    console.print(render_export(data))
