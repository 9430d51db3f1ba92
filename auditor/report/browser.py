"""Headless Chromium on a report: a PNG of the page with one action selected (`audit report --png`).

Chromium is Debian's ``chromium`` package (``apt-get install chromium``), or the binary that
``$CHROMIUM`` names; nothing here downloads a browser. Every run gets a fresh, empty profile and
no network features.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

#: What Chromium needs headless here: no sandbox (containers run it as root), no GPU, nothing on the network.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
)

DEFAULT_SIZE = (1400, 1000)


class ChromiumNotFound(RuntimeError):
    """No Chromium binary to run; the message says how to install one."""


def find_chromium() -> str | None:
    """Path of the Chromium binary: ``$CHROMIUM`` when set (None when it names no file, rather than
    silently running another browser), else ``chromium`` or ``chromium-browser`` on ``PATH``."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def require_chromium() -> str:
    """`find_chromium`, or `ChromiumNotFound` saying how to get one."""
    found = find_chromium()
    if found is not None:
        return found
    env = os.environ.get("CHROMIUM")
    if env:
        raise ChromiumNotFound(f"$CHROMIUM is {env!r}, which is not a file: point it at a Chromium binary, "
                               "or unset it and `apt-get install chromium`")
    raise ChromiumNotFound("Chromium is not installed: `apt-get install chromium` (Debian's package), "
                           "or set $CHROMIUM to a Chromium binary")


def page_url(html: str | Path, action_id: str | None = None) -> str:
    """The report's ``file://`` URL, opening on ``action_id`` when given."""
    url = Path(html).resolve().as_uri()
    return url + ("#action=" + quote(action_id, safe="") if action_id else "")


def run_chromium(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with `CHROMIUM_FLAGS`, a throw-away profile and ``args``."""
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="auditor-chromium-", ignore_cleanup_errors=True) as profile:
        return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(html: str | Path, png: str | Path, action_id: str | None = None, *,
               size: tuple[int, int] = DEFAULT_SIZE, budget_ms: int = 5000, timeout: float = 90) -> Path:
    """Write a PNG of the report ``html`` at ``size`` (width, height) with ``action_id`` selected
    (the page's first action when None), after its script has had ``budget_ms`` of virtual time."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)  # so that an old file never passes for this run's
    proc = run_chromium([f"--virtual-time-budget={budget_ms}", f"--window-size={size[0]},{size[1]}",
                         f"--screenshot={png}", page_url(html, action_id)], timeout)
    if proc.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium --screenshot failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return png


__all__ = ["CHROMIUM_FLAGS", "ChromiumNotFound", "find_chromium", "require_chromium", "page_url", "run_chromium",
           "screenshot"]
