"""`make demo`: the main job end to end on the embedded model, as a user would type it.

Each step runs the real `audit` command, so the demo shows exactly what a newcomer can do next.
The demo database and report are rebuilt on every run (idempotent).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

ROOT = Path(__file__).resolve().parent.parent
console = Console()


def _audit_bin() -> str:
    exe = Path(sys.executable).with_name("audit")
    return str(exe) if exe.exists() else (shutil.which("audit") or "audit")


def step(title: str, *args: str, ok_codes: tuple[int, ...] = (0,)) -> int:
    console.print(Rule(f"[bold]{title}"))
    console.print(f"$ audit {' '.join(args)}", style="dim")
    code = subprocess.call([_audit_bin(), *args], cwd=ROOT)
    if code not in ok_codes:
        console.print(f"[red]step failed with exit code {code}[/]")
        raise SystemExit(code)
    return code


def main() -> None:
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    db = out / "demo.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    examples = ROOT / "examples"
    inputs = [str(examples / n) for n in ("injected_email.jsonl", "benign_budget_email.jsonl", "aider_session.jsonl")]
    real_run = examples / "runs" / "agent_run.jsonl"
    if real_run.exists():
        inputs.append(str(real_run))
    os.environ.setdefault("AUDITOR_DB", str(db))

    step("Models", "models")
    step("Replay and attribute every action (FlashTrace, 1 hop)", "trace", *inputs, "--db", str(db))
    step(
        "Which tool outputs drove each send_email action? (SQL over the store)",
        "query",
        "SELECT trajectory_id, action_id, driver_label, round(share, 3) AS share "
        "FROM action_drivers WHERE tool_name = 'send_email' AND driver_kind = 'tool_output' "
        "ORDER BY trajectory_id, share DESC",
        "--db",
        str(db),
    )
    step("CI check on the injected and the benign example (exit 1 = unsupported actions found)", "check", inputs[0], inputs[1],
         "--junit", str(out / "junit.xml"), ok_codes=(0, 1))
    step("HTML report of the injected example", "report", inputs[0], "-o", str(out / "report.html"))
    console.print(Rule("[bold]Done"))
    console.print(f"database: {db}\nnext: audit query \"SELECT * FROM action_drivers LIMIT 20\" --db {db}")


if __name__ == "__main__":
    main()
