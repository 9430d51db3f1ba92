"""`audit eval`: faithfulness of the attribution methods on RULER-style tasks (recovery, RISE,
MAS, time), as a table, JSON and PNG plots. The work is `auditor.evaluation.run_eval`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from auditor.cli.app import EXIT_USAGE, app, console, err_console


def _load_model(spec: str | None) -> tuple[Any, Any]:
    """The model and tokenizer to evaluate (a seam: tests substitute a tiny model)."""
    from auditor.model_registry import load_model

    return load_model(spec)


class _RichProgress:
    """`auditor.evaluation.runner.ProgressHook` on a rich progress bar (one bar per stage)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task_id: Any = None

    def stage(self, description: str, total: int) -> None:
        if self.task_id is not None:
            self.progress.update(self.task_id, completed=self.progress.tasks[-1].total)
        self.task_id = self.progress.add_task(escape(description), total=total)

    def advance(self, n: int = 1) -> None:
        if self.task_id is not None:
            self.progress.advance(self.task_id, n)


def _fmt(x: float, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def summary_table(report) -> Table:
    table = Table(title="Attribution faithfulness (recovery higher is better; RISE, MAS lower is better)")
    for col, kw in (("task", {}), ("variant", {}), ("method", {}), ("n", {"justify": "right"}),
                    ("recovery ↑", {"justify": "right"}), ("RISE ↓", {"justify": "right"}),
                    ("MAS ↓", {"justify": "right"}), ("seconds", {"justify": "right"})):
        table.add_column(col, **kw)
    rows = report.summary()
    best: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        b = best.setdefault((r.task, r.variant), {"recovery": -1.0, "rise": 9.0, "mas": 9.0})
        if not math.isnan(r.recovery):
            b["recovery"] = max(b["recovery"], r.recovery)
        if not math.isnan(r.rise):
            b["rise"] = min(b["rise"], r.rise)
        if not math.isnan(r.mas):
            b["mas"] = min(b["mas"], r.mas)
    last_task = None
    for r in rows:
        if last_task is not None and r.task != last_task:
            table.add_section()
        last_task = r.task
        b = best[(r.task, r.variant)]

        def cell(v: float, key: str) -> str:
            s = _fmt(v)
            return f"[bold green]{s}[/]" if not math.isnan(v) and abs(v - b[key]) < 1e-12 else s

        table.add_row(r.task, r.variant, r.method, str(r.n), cell(r.recovery, "recovery"), cell(r.rise, "rise"),
                      cell(r.mas, "mas"), _fmt(r.seconds, 2))
    return table


@app.command("eval")
def eval_command(
    task: list[str] = typer.Argument(..., show_default=False,
                                     help="Tasks: mq-q<K> (multi-query needles), mv-v<K> (multi-value needles), "
                                          "vt-h<H>-c<C> (variable tracking: H hops, C chains), or 'all'."),
    method: list[str] = typer.Option(None, "--method", "-m",
                                     help="Attribution method, repeatable (default: flashtrace ifr-token loo attention)."),
    hops: list[int] = typer.Option(None, "--hops", min=0, help="FlashTrace hop counts, repeatable (default: 0 1 2)."),
    n: int = typer.Option(3, "--n", min=1, help="Examples per task."),
    length: int = typer.Option(512, "--length", min=32, help="Tokens in each example's user message (context + question)."),
    seed: int = typer.Option(0, "--seed", help="Generator seed (same seed, same examples)."),
    variant: str = typer.Option("auto", "--variant",
                                help="Traces: model (the model's own, kept only when right), gold (written by the "
                                     "generator, teacher-forced) or auto (model where right, else gold)."),
    out: Path = typer.Option(Path("eval-results"), "--out", file_okay=False,
                             help="Folder for eval.json, eval_deletion.png and eval_recovery.png."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
    model: str | None = typer.Option(None, "--model", help="A local HF model directory (default: the embedded SmolLM2)."),
    max_new_tokens: int = typer.Option(96, "--max-new-tokens", min=8, help="Generation budget for model traces."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for the model (default: "
                                       "$OMP_NUM_THREADS, else one per core, waiting threads asleep)."),
) -> None:
    """Measure how faithful each attribution method is on RULER-style long-context tasks.

    Generates seeded needle-in-a-haystack and variable-tracking examples offline, lets the model
    reason and answer (keeping right answers, or using gold traces), attributes the reasoning and
    answer back to the input with every method, and reports: recovery rate (share of the gold
    needle / assignment tokens in the top 10 % of input tokens), RISE and MAS deletion (area under
    the teacher-forced log-probability as the top-ranked inputs are deleted in 20 steps) and
    seconds per attribution. Writes OUT/eval.json and two PNG plots.

    Example: audit eval mq-q2 vt-h2-c3 --method flashtrace --method attention --hops 0 --hops 1 --n 2
    """
    from auditor.attribution import list_methods
    from auditor.evaluation import expand_tasks, run_eval
    from auditor.evaluation.plots import save_plots
    from auditor.evaluation.runner import DEFAULT_HOPS, DEFAULT_METHODS

    try:
        tasks = expand_tasks(task)
    except ValueError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    methods = list(method or DEFAULT_METHODS)
    unknown = [m for m in methods if m not in list_methods()]
    if unknown:
        err_console.print(f"[red]error:[/] unknown method(s) {', '.join(unknown)}; valid: {', '.join(list_methods())}")
        raise typer.Exit(EXIT_USAGE)
    if variant not in ("auto", "model", "gold"):
        err_console.print(f"[red]error:[/] --variant must be auto, model or gold; got {variant!r}")
        raise typer.Exit(EXIT_USAGE)
    from auditor.model_registry import ModelNotAvailable, configure_threads

    if threads is not None:
        configure_threads(threads)
    try:
        loaded, tokenizer = _load_model(model)
    except ModelNotAvailable as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=as_json) as bar:
        report = run_eval(tasks, method=methods, hops=list(hops or DEFAULT_HOPS), n=n, length=length, seed=seed,
                          variant=variant, model=loaded, tokenizer=tokenizer, max_new_tokens=max_new_tokens,
                          progress=_RichProgress(bar))
    from auditor.model_registry import EMBEDDED_NAME

    report.settings["model"] = model or EMBEDDED_NAME
    json_path = report.save_json(out / "eval.json")
    pngs = save_plots(report, out) if report.records else []
    if as_json:
        from dataclasses import asdict

        from auditor.evaluation.runner import _json_safe

        payload = {"settings": report.settings, "generation": {k: {kk: vv for kk, vv in v.items() if kk != "failures"}
                                                                for k, v in report.generation.items()},
                   "summary": [asdict(r) for r in report.summary()],
                   "files": [str(json_path), *map(str, pngs)]}
        console.print_json(json.dumps(_json_safe(payload)))
        return
    for name, gen in report.generation.items():
        used = gen.get("used", {})
        if gen.get("generated"):
            console.print(f"{name}: the model answered {gen['right']}/{gen['generated']} right; "
                          f"traces used: {used.get('model', 0)} model, {used.get('gold', 0)} gold")
        else:
            console.print(f"{name}: {used.get('gold', 0)} gold traces")
    console.print(summary_table(report))
    errors = [r for r in report.records if r.error]
    for r in errors[:5]:
        err_console.print(f"[yellow]warning:[/] {r.method} on {r.uid}: {escape(r.error or '')}")
    console.print(f"wrote {json_path}" + "".join(f", {p}" for p in pngs))
