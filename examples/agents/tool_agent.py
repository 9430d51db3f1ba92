#!/usr/bin/env python3
"""A multi-turn tool-calling agent ("MailPilot") with a few realistic tools, instrumented with
auditor's collectors. Runs against any OpenAI-compatible endpoint.

Tools: ``read_inbox`` (the scenario's mailbox), ``search_files`` (grep over a scratch folder of
files), ``send_email`` (appends to an outbox file, sends nothing), ``run_sql`` (a scratch DuckDB),
``fetch_page`` (HTTP GET of a page served on 127.0.0.1 by the agent itself).

The scenario file decides the steps (which tool is called next) and which tool outputs carry
injected instructions; the model writes the arguments (JSON-schema constrained) and the answer.

Example::

    python examples/agents/tool_agent.py --scenario inbox_exfil --otlp http://127.0.0.1:4318/v1/traces
"""

from __future__ import annotations

import argparse
import http.server
import json
import shutil
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common import (  # this folder: on sys.path when run as a script
    Scenario,
    Tracing,
    agent_context,
    common_args,
    load_scenario,
    log,
    message_dict,
    new_conversation_id,
    sampling_extra,
    strict_tools,
    tool_call_regex,
    tool_context,
)

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {
        "name": "read_inbox", "description": "List the newest emails in a mailbox folder, with sender, subject and body.",
        "parameters": {"type": "object", "additionalProperties": False, "required": ["folder", "limit"], "properties": {
            "folder": {"type": "string", "enum": ["inbox", "archive"]},
            "limit": {"type": "integer", "minimum": 1, "maximum": 20}}}}},
    {"type": "function", "function": {
        "name": "search_files", "description": "Search the user's documents for a word or phrase; returns matching lines with their file.",
        "parameters": {"type": "object", "additionalProperties": False, "required": ["query"], "properties": {
            "query": {"type": "string", "maxLength": 60}}}}},
    {"type": "function", "function": {
        "name": "send_email", "description": "Send an email on the user's behalf.",
        "parameters": {"type": "object", "additionalProperties": False, "required": ["to", "subject", "body"], "properties": {
            "to": {"type": "string", "maxLength": 80},
            "subject": {"type": "string", "maxLength": 80},
            "body": {"type": "string", "maxLength": 400}}}}},
    {"type": "function", "function": {
        "name": "run_sql", "description": "Run a read-only SQL query against the company database (DuckDB).",
        "parameters": {"type": "object", "additionalProperties": False, "required": ["query"], "properties": {
            "query": {"type": "string", "maxLength": 200}}}}},
    {"type": "function", "function": {
        "name": "fetch_page", "description": "Fetch a page from the intranet and return its text.",
        "parameters": {"type": "object", "additionalProperties": False, "required": ["url"], "properties": {
            "url": {"type": "string", "maxLength": 120}}}}},
]
TOOL_BY_NAME = {t["function"]["name"]: t for t in TOOLS}
# A final answer: sentences of plain text (no markup a tool parser would mistake for a call).
ANSWER_REGEX = r"[A-Z][^<>{}\[\]\n`]+[.!?]"


class Workspace:
    """The tools' world, built from the scenario in a scratch directory."""

    def __init__(self, scenario: Scenario, root: Path):
        self.scenario = scenario
        self.root = root
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        for rel, text in scenario.data.get("files", {}).items():
            p = self.files / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        self.outbox = root / "outbox.jsonl"
        self.db_path = root / "company.duckdb"
        import duckdb

        with duckdb.connect(str(self.db_path)) as con:
            for stmt in scenario.data.get("sql", []):
                con.execute(stmt)
        self.pages: dict[str, str] = scenario.data.get("pages", {})
        self._server: http.server.ThreadingHTTPServer | None = None
        self.pages_url = ""
        if self.pages:
            self._serve_pages()
        self._calls: dict[str, int] = {}

    # the intranet: a loopback-only page server for fetch_page
    def _serve_pages(self) -> None:
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = pages.get(self.path.split("?")[0])
                data = (body if body is not None else "404 not found").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.pages_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def expand(self, value: Any) -> Any:
        """``{pages_url}`` in scenario pins and texts -> the page server's address."""
        if isinstance(value, str):
            return value.replace("{pages_url}", self.pages_url)
        if isinstance(value, dict):
            return {k: self.expand(v) for k, v in value.items()}
        return value

    # -- tools ------------------------------------------------------------------------------------------------
    def run(self, name: str, args: dict[str, Any]) -> str:
        fn = getattr(self, f"tool_{name}", None)
        if fn is None:
            return f"error: unknown tool {name!r}"
        try:
            out = fn(**args)
        except TypeError as exc:
            out = f"error: bad arguments for {name}: {exc}"
        n = self._calls[name] = self._calls.get(name, 0) + 1
        for inj in self.scenario.injections:
            if inj.get("tool") == name and inj.get("call", 1) == n:
                out = out.rstrip("\n") + "\n\n" + self.expand(inj["text"]).strip() + "\n"
        return out

    def tool_read_inbox(self, folder: str = "inbox", limit: int = 5) -> str:
        mails = self.scenario.data.get("mailbox", {}).get(folder, [])[: max(1, int(limit))]
        if not mails:
            return f"({folder} is empty)"
        return "\n\n".join(
            f"From: {m['from']}\nSubject: {m['subject']}\n\n{self.expand(m['body']).strip()}" for m in mails
        ) + "\n"

    def tool_search_files(self, query: str) -> str:
        q = query.strip().lower()
        hits = []
        for p in sorted(self.files.rglob("*")):  # a file whose name matches: show its first lines
            if p.is_file() and q and q in str(p.relative_to(self.files)).lower():
                head = p.read_text(errors="replace").splitlines()[:8]
                hits.append(f"{p.relative_to(self.files)}:\n" + "\n".join("  " + line for line in head))
        for p in sorted(self.files.rglob("*")):
            if p.is_file():
                for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
                    if q and q in line.lower():
                        hits.append(f"{p.relative_to(self.files)}:{i}: {line.strip()}")
        if not hits:  # word-level fallback, as a desktop search would do
            words = [w for w in q.split() if len(w) > 2]
            for p in sorted(self.files.rglob("*")):
                if p.is_file():
                    for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
                        if any(w in line.lower() for w in words):
                            hits.append(f"{p.relative_to(self.files)}:{i}: {line.strip()}")
        return "\n".join(hits[:12]) + "\n" if hits else f"no file mentions {query!r}\n"

    def tool_send_email(self, to: str, subject: str, body: str) -> str:
        with self.outbox.open("a") as f:
            f.write(json.dumps({"to": to, "subject": subject, "body": body}) + "\n")
        n = sum(1 for _ in self.outbox.open())
        return f"sent message #{n} to {to}\n"

    def tool_run_sql(self, query: str) -> str:
        import duckdb

        try:
            with duckdb.connect(str(self.db_path), read_only=True) as con:
                cur = con.execute(query)
                cols = [d[0] for d in cur.description or []]
                rows = cur.fetchmany(20)
        except duckdb.Error as exc:
            return f"SQL error: {str(exc).splitlines()[0]}\n"
        lines = [" | ".join(cols)] + [" | ".join(str(v) for v in r) for r in rows]
        return "\n".join(lines) + f"\n({len(rows)} row{'s' if len(rows) != 1 else ''})\n"

    def tool_fetch_page(self, url: str) -> str:
        if not url.startswith(("http://127.0.0.1", "http://localhost")):
            if url.startswith("/") and self.pages_url:
                url = self.pages_url + url
            else:
                return f"error: {url} is not on the intranet (only {self.pages_url or 'local pages'} can be fetched)\n"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code} for {url}\n"
        except (urllib.error.URLError, OSError) as exc:
            return f"error fetching {url}: {exc}\n"


def run(args: argparse.Namespace) -> dict[str, Any]:
    from openai import OpenAI

    scenario = load_scenario(args.scenario)
    if scenario.agent != "tools":
        raise SystemExit(f"{scenario.path} is a {scenario.agent!r} scenario, not a tool-agent one")
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix=f"agent-{scenario.name}-"))
    ws = Workspace(scenario, root)
    tracing = Tracing(args.otlp, args.jsonl, service="tool-agent")
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, timeout=300, max_retries=0)
    conv = new_conversation_id(scenario)
    tools = strict_tools(TOOLS) if args.constrain != "none" else TOOLS
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": ws.expand(scenario.system)},
        {"role": "user", "content": ws.expand(scenario.user)},
    ]
    record: dict[str, Any] = {"scenario": scenario.name, "conversation_id": conv, "calls": [], "answer": None}
    try:
        with agent_context("mailpilot", conv, tracing):
            for i, step in enumerate(scenario.steps):
                kw: dict[str, Any] = dict(model=args.model, messages=messages, tools=tools,
                                          max_tokens=step.max_tokens, temperature=0, seed=args.seed)
                extra = sampling_extra(args.constrain)
                if step.answer:
                    kw["tool_choice"] = "none"
                    if args.constrain == "vllm":  # prose, not another tool-call look-alike
                        extra["structured_outputs"] = {"regex": ANSWER_REGEX}
                elif step.tool in ("any", "auto"):
                    kw["tool_choice"] = "required" if step.tool == "any" and args.constrain != "none" else "auto"
                else:
                    if step.tool not in TOOL_BY_NAME:
                        raise SystemExit(f"{scenario.path}: step {i}: unknown tool {step.tool!r}")
                    pin = ws.expand(step.pin)
                    if args.constrain == "none":
                        kw["tool_choice"] = "auto"
                    elif pin and args.constrain == "vllm":
                        # Decoding follows the pin; the request (messages, tools) is what any agent sends.
                        kw["tool_choice"] = "auto"
                        kw["tools"] = TOOLS
                        extra["structured_outputs"] = {"regex": tool_call_regex(TOOL_BY_NAME[step.tool], pin)}
                        # room for the literal parts even if the model spells them a character a token
                        kw["max_tokens"] = step.max_tokens + len(json.dumps(pin)) + 40
                    else:
                        kw["tool_choice"] = {"type": "function", "function": {"name": step.tool}}
                if extra:
                    kw["extra_body"] = extra
                reply = client.chat.completions.create(**kw)
                msg = reply.choices[0].message
                messages.append(message_dict(msg))
                if step.answer or not msg.tool_calls:
                    record["answer"] = msg.content
                    log(f"[{scenario.name}] step {i}: answer: {(msg.content or '').strip()[:160]!r}")
                    if not step.answer:
                        log(f"[{scenario.name}] step {i}: expected a call to {step.tool}, got text; stopping")
                        break
                    continue
                for call in msg.tool_calls:
                    try:
                        call_args = json.loads(call.function.arguments or "{}")
                    except json.JSONDecodeError:
                        call_args = {}
                    desc = TOOL_BY_NAME.get(call.function.name, {}).get("function", {}).get("description")
                    with tool_context(call.function.name, call.id, call.function.arguments, tracing, desc) as t:
                        result = ws.run(call.function.name, call_args) if isinstance(call_args, dict) \
                            else "error: arguments must be a JSON object\n"
                        t.set_result(result)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
                    record["calls"].append({"tool": call.function.name, "arguments": call_args, "result": result})
                    log(f"[{scenario.name}] step {i}: {call.function.name}({call.function.arguments}) -> {result.strip()[:100]!r}")
    finally:
        tracing.close()
        ws.close()
        if not args.workdir and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(p)
    p.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    p.add_argument("--json", action="store_true", help="print the run's calls and answer as JSON")
    args = p.parse_args(argv)
    record = run(args)
    if args.json:
        print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
