"""Verdicts onto the action's own span in Arize Phoenix: span annotations, Phoenix's place for
evaluations (its REST API, ``POST /v1/span_annotations``; tested with arize-phoenix 20.26.1).

OTLP cannot change a span already sent, so `auditor.report.otlp` adds a child span per verdict;
Phoenix can also attach the verdict to the span itself, where its trace view shows it next to
the span's name (``auditor.support`` with the label and score) and its API returns it with the
span. Each annotation is named ``auditor.support`` with the evaluation's label, score and
explanation, the ``auditor.*`` attributes as metadata, annotator kind ``CODE`` and identifier
``auditor:{run id}``: exporting the same run again updates its annotations instead of adding more.
The spans must be in Phoenix already (it ingests OTLP asynchronously: an annotation of a span not
yet stored is retried for a few seconds).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Mapping, Sequence

from auditor.report.otlp import EVALUATION_NAME, Evaluation, ExportError


def annotation(e: Evaluation) -> dict[str, Any]:
    """One evaluation as a Phoenix span annotation."""
    result: dict[str, Any] = {"label": e.label, "explanation": e.explanation}
    if e.score is not None:
        result["score"] = e.score
    meta = {k: v for k, v in e.attributes.items() if k.startswith("auditor.")}
    return {"span_id": e.span_id, "name": EVALUATION_NAME, "annotator_kind": "CODE",
            "identifier": f"auditor:{e.run_id}", "result": result, "metadata": meta}


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **dict(headers)})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own Phoenix URL
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        raise ExportError(f"{url}: cannot reach Phoenix ({exc})") from exc


def annotate_phoenix(evals: Sequence[Evaluation], base_url: str, headers: Mapping[str, str] | None = None,
                     timeout: float = 10.0, wait: float = 15.0) -> int:
    """Annotate each evaluated span in the Phoenix at ``base_url`` (e.g. ``http://127.0.0.1:6006``);
    returns how many annotations Phoenix stored. Raises `ExportError` naming what Phoenix answered."""
    if not evals:
        return 0
    url = base_url.rstrip("/") + "/v1/span_annotations?sync=true"
    body = json.dumps({"data": [annotation(e) for e in evals]}, ensure_ascii=False, default=str).encode("utf-8")
    deadline = time.monotonic() + wait
    while True:
        status, text = _post(url, body, headers or {}, timeout)
        if status == 200:
            return len(json.loads(text).get("data") or [])
        if status != 404 or time.monotonic() >= deadline:  # 404: a span not ingested (yet)
            raise ExportError(f"{url} answered {status}: {text[:500]}")
        time.sleep(0.5)
