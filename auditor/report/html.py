"""Render the report data into one self-contained HTML file.

The page is `assets/report.html` with `report.css` and `report.js` inlined and the data embedded as
JSON in ``<script type="application/json" id="report-data">``. Nothing is loaded from the network
(no CDN, no web fonts; a Content-Security-Policy forbids it), so the file can be mailed, attached
to a CI run or opened offline.
"""

from __future__ import annotations

import html as _html
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from auditor.report.data import report_data
from auditor.audit.schema import TrajectoryAudit


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    return resources.files("auditor.report").joinpath("assets", name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON safe inside a <script> element: no ``</script>``, no ``<!--``, no stray ``&``.

    ``<``, ``>`` and ``&`` become ``\\u003c``/``\\u003e``/``\\u0026`` (JSON.parse reads them back) and
    U+2028/2029 are escaped too.
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_html(data: Mapping[str, Any]) -> str:
    """The whole page for report data built by `auditor.report.data.report_data`."""
    page = _asset("report.html")
    # replace the data last so nothing inside it is ever taken for a placeholder
    page = page.replace("__TITLE__", _html.escape(str(data.get("title", "report"))))
    page = page.replace("/*__CSS__*/", _asset("report.css"))
    page = page.replace("/*__JS__*/", _asset("report.js").replace("</", "<\\/"))
    head, tail = page.split("__DATA__", 1)
    return head + embed_json(data) + tail


def write_report(
    audits: Iterable[TrajectoryAudit],
    path: str | Path,
    verdicts: Mapping[str, Any] | None = None,
    exports: Mapping[str, dict[str, Any]] | None = None,
    title: str | None = None,
) -> Path:
    """Build the data for ``audits`` and write the page to ``path``; returns the path."""
    path = Path(path)
    page = render_html(report_data(list(audits), verdicts=verdicts, exports=exports, title=title))
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
