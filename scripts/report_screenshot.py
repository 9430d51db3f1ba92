"""Write ``docs/report-injected.png``: audit ``examples/injected_email.jsonl`` on the replay model
(default: the embedded SmolLM2), write its HTML report and take a headless Chromium screenshot of
it with the ``send_email`` action selected.

    python scripts/report_screenshot.py                          # docs/report-injected.png
    python scripts/report_screenshot.py --html r.html --action ID --out shot.png

The same screenshot of any report: ``audit report REF -o report.html --png shot.png --action ID``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from auditor.report.browser import DEFAULT_SIZE, ChromiumNotFound, require_chromium, screenshot

ROOT = Path(__file__).resolve().parents[1]


def injected_example_report(html: str | Path, model: str | None = None) -> str:
    """Audit the injected example with the replay model and write its report; returns the id of
    the send_email action."""
    from auditor.report.build import report_from_file

    result = report_from_file(ROOT / "examples" / "injected_email.jsonl", html, settings={"model": model})
    (audit,) = result.audits
    return next(a.action.id for a in audit.actions if a.action.tool_name == "send_email")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/report_screenshot.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--html", help="An existing report (default: audit the injected example and report it).")
    p.add_argument("--action", help="Action id to select (default: the example's send_email).")
    p.add_argument("--model", help="Replay model directory (default: the embedded SmolLM2).")
    p.add_argument("--out", default=str(ROOT / "docs" / "report-injected.png"), help="PNG to write.")
    p.add_argument("--size", default=f"{DEFAULT_SIZE[0]},{DEFAULT_SIZE[1]}", help="Window size WIDTH,HEIGHT.")
    args = p.parse_args(argv)
    width, height = (int(x) for x in args.size.split(","))
    try:
        require_chromium()  # before minutes of replay
    except ChromiumNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
