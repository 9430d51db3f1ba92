"""Look at a report with headless Chromium: dump its DOM or take a screenshot, an action selected.

    python -m auditor.report.screenshot                 # docs/report-injected.png, embedded model
    python -m auditor.report.screenshot --html r.html --action ID --out shot.png

Chromium is Debian's ``chromium`` package (``apt-get install -y chromium``); nothing here
downloads a browser. Every run gets a fresh, empty profile and no network features.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]

#: What this machine's Chromium needs headless: no sandbox (root), no GPU, nothing on the network.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
)


class ChromiumNotFound(RuntimeError):
    pass


def find_chromium() -> str | None:
    """Path of a Chromium binary (``$CHROMIUM``, ``chromium``, ``chromium-browser``), or None."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def page_url(html: str | Path, action_id: str | None = None) -> str:
    url = Path(html).resolve().as_uri()
    return url + ("#action=" + quote(action_id, safe="") if action_id else "")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    chromium = find_chromium()
    if chromium is None:
        raise ChromiumNotFound("Chromium is not installed: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="auditor-chromium-", ignore_cleanup_errors=True) as profile:
        return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)


def dump_dom(html: str | Path, action_id: str | None = None, *, budget_ms: int = 5000, timeout: float = 90) -> str:
    """The page's DOM after its script ran (``--dump-dom``), with ``action_id`` selected."""
    proc = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", page_url(html, action_id)], timeout)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"chromium --dump-dom failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def screenshot(html: str | Path, png: str | Path, action_id: str | None = None, *, size: tuple[int, int] = (1400, 1000),
               budget_ms: int = 5000, timeout: float = 90) -> Path:
    """A PNG of the page at ``size`` with ``action_id`` selected."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    proc = _run([f"--virtual-time-budget={budget_ms}", f"--window-size={size[0]},{size[1]}", f"--screenshot={png}",
                 page_url(html, action_id)], timeout)
    if proc.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium --screenshot failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return png


def injected_example_report(html: str | Path, model: str | None = None) -> str:
    """Audit ``examples/injected_email.jsonl`` with the replay model and write its report; returns
    the id of the send_email action."""
    from auditor.report.build import report_from_file

    result = report_from_file(ROOT / "examples" / "injected_email.jsonl", html, settings={"model": model})
    (audit,) = result.audits
    return next(a.action.id for a in audit.actions if a.action.tool_name == "send_email")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m auditor.report.screenshot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--html", help="An existing report (default: audit the injected example and report it).")
    p.add_argument("--action", help="Action id to select (default: the example's send_email).")
    p.add_argument("--model", help="Replay model directory (default: the embedded SmolLM2).")
    p.add_argument("--out", default=str(ROOT / "docs" / "report-injected.png"), help="PNG to write.")
    p.add_argument("--size", default="1400,1000", help="Window size WIDTH,HEIGHT.")
    args = p.parse_args(argv)
    width, height = (int(x) for x in args.size.split(","))
    with tempfile.TemporaryDirectory(prefix="auditor-report-") as tmp:
        html = args.html
        action = args.action
        if html is None:
            html = str(Path(tmp) / "report-injected.html")
            found = injected_example_report(html, args.model)
            action = action or found
        png = screenshot(html, args.out, action, size=(width, height))
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
