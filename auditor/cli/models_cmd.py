"""`audit models`: which replay models are available, and where they live."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from auditor import model_registry
from auditor.cli.app import EXIT_USAGE, app, console, err_console


@app.command("models")
def models_command(
    provision: bool = typer.Option(False, "--provision", help="Convert the embedded GGUF to safetensors now (once, ~30 s)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List the models auditor can replay with: the embedded SmolLM2 and how to get it.

    Any local Hugging Face directory (config.json + *.safetensors, no remote code) also works
    wherever a command takes --model PATH.

    Example: audit models --provision
    """
    if provision:
        try:
            path = model_registry.provision_embedded()
        except model_registry.ModelNotAvailable as exc:
            err_console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(EXIT_USAGE) from exc
        if not as_json:
            console.print(f"embedded model ready at [bold]{path}[/]")
    infos = model_registry.list_models()
    if as_json:
        console.print_json(json.dumps([{"name": i.name, "path": str(i.path) if i.path else None,
                                        "status": i.status, "note": i.note} for i in infos]))
        return
    table = Table(title="Replay models")
    for col in ("name", "status", "path", "note"):
        table.add_column(col, overflow="fold")
    for i in infos:
        style = "green" if i.status == "ready" else "yellow"
        table.add_row(i.name, f"[{style}]{i.status}[/]", str(i.path or "-"), i.note)
    console.print(table)
    console.print("Also: any local HF model directory via [bold]--model PATH[/] (safetensors, no remote code).")
