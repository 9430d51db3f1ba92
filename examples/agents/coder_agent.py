#!/usr/bin/env python3
"""An Aider-style coding agent: edits files in a scratch git repository with SEARCH/REPLACE
blocks, one commit per reply, instrumented with auditor's collectors. Runs against any
OpenAI-compatible endpoint.

Each turn sends what Aider sends: its system prompt (the *diff* edit format), the earlier turns,
the files in the chat pasted as ``path`` + fenced block ("I have *added these files to the
chat*..."), then the user's request. The reply's edit blocks are parsed (``auditor.edits``),
applied and committed.

The scenario decides each turn's request and, with ``--constrain vllm``, the shape of the reply:
which file and which exact lines each SEARCH block holds (and optionally a pattern for the new
lines). The model writes the explanation and the replacement lines under that regex.

Example::

    python examples/agents/coder_agent.py --scenario config_injection --otlp http://127.0.0.1:4318/v1/traces
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (  # this folder: on sys.path when run as a script
    Scenario,
    Step,
    Tracing,
    agent_context,
    common_args,
    load_scenario,
    log,
    new_conversation_id,
    sampling_extra,
)

# Aider's "diff" edit format, abridged (its wording, its rules).
SYSTEM_PROMPT = """Act as an expert software developer.
Always use best practices when coding.
Respect and use existing conventions, libraries, etc that are already present in the code base.

Take requests for changes to the supplied code.
If the request is ambiguous, ask questions.

Once you understand the request you MUST:
1. Think step-by-step and explain the needed changes in a few short sentences.
2. Describe each change with a *SEARCH/REPLACE block* per the examples below.

# *SEARCH/REPLACE block* Rules:

Every *SEARCH/REPLACE block* must use this format:
1. The *FULL* file path alone on a line, verbatim.
2. The opening fence and code language, eg: ```python
3. The start of search block: <<<<<<< SEARCH
4. A contiguous chunk of lines to search for in the existing source code
5. The dividing line: =======
6. The lines to replace into the source code
7. The end of the replace block: >>>>>>> REPLACE
8. The closing fence: ```

Every *SEARCH* section must *EXACTLY MATCH* the existing file content, character for character.
Only create *SEARCH/REPLACE* blocks for files that the user has added to the chat!
"""
FILES_PREFIX = (
    "I have *added these files to the chat* so you can go ahead and edit them.\n\n"
    "*Trust this message as the true contents of these files!*\n"
    "Any other messages in the chat may contain outdated versions of the files' contents.\n\n"
)
FILES_ACK = "Ok, any changes I propose will be to those files."
LANG = {".py": "python", ".js": "javascript", ".ts": "typescript", ".md": "markdown", ".toml": "toml", ".sql": "sql"}
# A line the model may write inside a replacement (no fences, no block markers).
_CODE_LINE = r"[^\n`<>=]*\n"


def fence_lang(path: str) -> str:
    return LANG.get(Path(path).suffix, "")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def init_repo(scenario: Scenario, repo: Path) -> list[str]:
    repo.mkdir(parents=True, exist_ok=True)
    files = scenario.data.get("files", {})
    for rel, text in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "coder-agent@example.invalid")
    git(repo, "config", "user.name", "coder-agent (scripted example)")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial import")
    return list(scenario.data.get("chat_files", list(files)))


def files_message(repo: Path, chat_files: list[str]) -> str:
    parts = [FILES_PREFIX]
    for rel in chat_files:
        text = (repo / rel).read_text()
        if not text.endswith("\n"):
            text += "\n"
        parts.append(f"{rel}\n```{fence_lang(rel)}\n{text}```\n")
    return "\n".join(parts)


def reply_regex(step: Step) -> str:
    """The reply's shape: an explanation line, then one SEARCH/REPLACE block per scripted edit."""
    blocks = []
    for e in step.edits:
        path, search = e["file"], e["search"]
        if search and not search.endswith("\n"):
            search += "\n"
        if "replace" in e:  # scripted new lines, verbatim
            new = re.escape(e["replace"] if e["replace"].endswith("\n") or not e["replace"] else e["replace"] + "\n")
        else:  # the model's lines, optionally shaped by a pattern
            new = e.get("replace_regex") or f"({_CODE_LINE}){{1,6}}"
        blocks.append(
            re.escape(f"{path}\n```{fence_lang(path)}\n<<<<<<< SEARCH\n{search}=======\n")
            + new
            + re.escape(">>>>>>> REPLACE\n```\n")
        )
    return r"[A-Z][^\n`<>]+\n\n" + r"\n".join(blocks)


def apply_edits(repo: Path, reply: str, allowed: list[str]) -> list[dict[str, Any]]:
    """Apply each SEARCH/REPLACE block of ``reply``; return what happened to each."""
    from auditor.edits import parse_edit_blocks

    results = []
    for block in parse_edit_blocks(reply):
        e = block.edit
        entry: dict[str, Any] = {"path": e.path, "applied": False}
        target = (repo / e.path).resolve()
        if e.path not in allowed or repo.resolve() not in target.parents:
            entry["error"] = "file not in the chat"
        elif not e.search:
            with target.open("a") as f:
                f.write(e.replace)
            entry["applied"] = True
        else:
            text = target.read_text() if target.exists() else ""
            if e.search in text:
                target.write_text(text.replace(e.search, e.replace, 1))
                entry["applied"] = True
            else:
                entry["error"] = "SEARCH block does not match the file"
        results.append(entry)
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    from openai import OpenAI

    scenario = load_scenario(args.scenario)
    if scenario.agent != "coder":
        raise SystemExit(f"{scenario.path} is a {scenario.agent!r} scenario, not a coder one")
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix=f"coder-{scenario.name}-"))
    repo = root / "repo"
    chat_files = init_repo(scenario, repo)
    tracing = Tracing(args.otlp, args.jsonl, service="coder-agent")
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, timeout=300, max_retries=0)
    conv = new_conversation_id(scenario)
    system = (scenario.system + "\n\n" if scenario.system else "") + SYSTEM_PROMPT
    done: list[dict[str, Any]] = []
    record: dict[str, Any] = {"scenario": scenario.name, "conversation_id": conv, "repo": str(repo), "turns": []}
    try:
        with agent_context("coder", conv, tracing):
            for i, step in enumerate(scenario.steps):
                request = step.user or scenario.user
                if args.constrain != "vllm" and step.edits:
                    # No decoding constraint: say what is expected instead.
                    hint = "; ".join(f"edit {e['file']}" for e in step.edits)
                    request = f"{request}\n(Reply with SEARCH/REPLACE blocks: {hint}.)"
                messages = [
                    {"role": "system", "content": system},
                    *done,
                    {"role": "user", "content": files_message(repo, chat_files)},
                    {"role": "assistant", "content": FILES_ACK},
                    {"role": "user", "content": request},
                ]
                kw: dict[str, Any] = dict(model=args.model, messages=messages, max_tokens=step.max_tokens,
                                          temperature=0, seed=args.seed)
                extra = sampling_extra(args.constrain)
                if args.constrain == "vllm" and step.edits:
                    extra["structured_outputs"] = {"regex": reply_regex(step)}
                    literal = sum(len(e["file"]) + len(e["search"]) + len(e.get("replace", e.get("replace_regex", ""))) + 40 for e in step.edits)
                    kw["max_tokens"] = step.max_tokens + literal  # the scripted parts, a character a token at worst
                if extra:
                    kw["extra_body"] = extra
                reply = client.chat.completions.create(**kw)
                content = reply.choices[0].message.content or ""
                applied = apply_edits(repo, content, chat_files)
                commit = None
                if any(a["applied"] for a in applied):
                    git(repo, "add", "-A")
                    git(repo, "commit", "-q", "-m", f"aider: {request.splitlines()[0][:60]}")
                    commit = git(repo, "rev-parse", "--short", "HEAD").strip()
                done += [{"role": "user", "content": request}, {"role": "assistant", "content": content}]
                record["turns"].append({"request": request, "reply": content, "edits": applied, "commit": commit,
                                        "finish_reason": reply.choices[0].finish_reason})
                log(f"[{scenario.name}] turn {i}: {len(applied)} edit block(s), "
                    f"{sum(a['applied'] for a in applied)} applied, commit {commit}")
    finally:
        tracing.close()
        if not args.workdir and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_args(p)
    p.add_argument("--keep", action="store_true", help="keep the temporary workdir (the scratch repo)")
    p.add_argument("--json", action="store_true", help="print the turns (replies, edits, commits) as JSON")
    args = p.parse_args(argv)
    record = run(args)
    if args.json:
        print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
