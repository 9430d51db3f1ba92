"""The package's shape: imports flow one way, there are no import cycles, modules stay small.

Data flows trajectory → collectors / segments → attribution → audit → check / store → report →
cli, and so do imports: a module imports only modules of a lower layer or of its own group,
inside functions too. Groups of one layer are peers and do not import each other (the check and
the store: whoever judges an audit also records it). The map below places every module; a new
module fails here until it is placed.

What counts as an import: every ``import`` / ``from … import`` anywhere in a module (functions
included); ``from pkg import name`` counts as importing the module that defines ``name`` when the
package exports it lazily (a module-level ``_EXPORTS`` or ``_LAZY`` dict), and a package's lazy
exports count as its imports. Imports under ``if TYPE_CHECKING:`` count for the layers (a lower
layer does not even name a higher layer's types) but not for cycles (they never run); lazy
exports do not count for cycles either (they run only when the name is used). Imports by name
(``importlib.import_module("…")``) are not seen.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "auditor"
MAX_LINES = 500
#: Append-only by rule (a shipped migration is never edited), so they grow without bound.
LINE_EXEMPT = {"auditor/store/migrations.py"}

#: Module (or package, covering its submodules) -> (layer, group). Longest prefix wins.
LAYERS: dict[str, tuple[int, str]] = {
    # 0: the shared contract and leaf helpers
    "auditor._version": (0, "core"),
    "auditor.trajectory": (0, "core"),
    "auditor.edits": (0, "core"),
    "auditor.actions": (0, "core"),
    "auditor.model_registry": (0, "core"),
    "auditor.testing": (0, "core"),  # tiny random models; `testing.audits` is placed below
    # 1: agent runs -> trajectories; trajectories -> segments and tokens
    "auditor.collectors": (1, "collectors"),
    "auditor.segments": (1, "segments"),
    "auditor.provenance": (1, "provenance"),  # where argument values occur in the text (pure text)
    # 2: the engine
    "auditor.attribution": (2, "attribution"),
    # 3: audits (replay + attribution + roll-up); the engine's faithfulness evaluation
    "auditor.audit": (3, "audit"),
    "auditor.evaluation": (3, "evaluation"),
    # 4: judging audits and keeping them (peers); model-free audits for tests
    "auditor.check": (4, "check"),
    "auditor.store": (4, "store"),
    "auditor.testing.audits": (4, "testing"),
    "auditor.testing.auditors": (4, "testing"),  # tiny-model auditors for distributed runs
    # 5: what people read (the action export joins store rows with the check's verdicts)
    "auditor.report": (5, "report"),
    # 5: audits at fleet scale: replay on Ray, Parquet results, the lake's query surface (audit, check, store)
    "auditor.distributed": (5, "distributed"),
    # 6: the runtime guard (the check's verdict before a tool runs: instrumentor hook, proxy, decorator)
    "auditor.guard": (6, "guard"),
    # 7: entry points
    "auditor.cli": (7, "entry"),
    "auditor.pytest_plugin": (7, "entry"),
    "auditor.demo": (7, "entry"),
}
#: The package itself is the front door (its exports are lazy); matched exactly, not as a prefix.
FRONT_DOOR = ("auditor", (7, "entry"))
#: Groups that import nothing else of the project (the engine works on any HF model and ids).
SELF_CONTAINED = {"attribution"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), str(path)) for name, path in MODULES.items()}


def layer_of(module: str) -> tuple[int, str] | None:
    if module == FRONT_DOOR[0]:
        return FRONT_DOOR[1]
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len, default=None)
    return LAYERS[best] if best else None


def lazy_exports(module: str) -> dict[str, str]:
    """A package's lazily exported names -> the module defining each (``_EXPORTS`` / ``_LAZY``)."""
    out: dict[str, str] = {}
    for node in TREES[module].body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id in ("_EXPORTS", "_LAZY") for t in targets) and node.value is not None:
            for name, where in ast.literal_eval(node.value).items():
                out[name] = where if where.startswith("auditor") else f"{module}.{where}"
    return out


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    type_only: bool = False  # under `if TYPE_CHECKING:`
    lazy: bool = False  # a package's lazy export

    def __str__(self) -> str:
        how = " (lazy export)" if self.lazy else " (TYPE_CHECKING)" if self.type_only else ""
        return f"{MODULES[self.source].relative_to(ROOT)}:{self.line} imports {self.target}{how}"


def _resolve(base: str, name: str | None) -> str | None:
    """The project module an import names: ``base.name`` when that is a module, the module a lazy
    export points to, else ``base`` itself (or its nearest enclosing module)."""
    if name and f"{base}.{name}" in MODULES:
        return f"{base}.{name}"
    if base in MODULES and name and name in lazy_exports(base):
        return lazy_exports(base)[name]
    while base and base not in MODULES:
        base = base.rpartition(".")[0]
    return base or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str) -> list[Import]:
    out: list[Import] = []
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "auditor" or alias.name.startswith("auditor."):
                    target = _resolve(alias.name, None)
                    if target:
                        out.append(Import(module, target, node.lineno, type_only))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, *([base] if base else [])])
            if base == "auditor" or base.startswith("auditor."):
                for alias in node.names:
                    target = _resolve(base, alias.name)
                    if target:
                        out.append(Import(module, target, node.lineno, type_only))
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(TREES[module], False)
    out.extend(Import(module, target, 1, lazy=True) for target in lazy_exports(module).values())
    return [i for i in out if i.target != module]


ALL_IMPORTS = [i for m in MODULES for i in imports_of(m)]


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if layer_of(m) is None]
    assert unplaced == [], f"place these modules in LAYERS: {unplaced}"


def test_imports_go_down_the_data_flow():
    bad = []
    for imp in ALL_IMPORTS:
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src is None:
            continue  # test_every_module_has_a_layer names it
        src_layer, src_group = src
        if dst is None:
            bad.append(f"{imp}: no such module")
            continue
        dst_layer, dst_group = dst
        if src_group in SELF_CONTAINED and dst_group != src_group:
            bad.append(f"{imp}: {src_group} imports nothing else of the project")
        elif dst_group != src_group and dst_layer >= src_layer:
            why = "a peer" if dst_layer == src_layer else "a higher layer"
            bad.append(f"{imp}: {dst_group} (layer {dst_layer}) is {why} of {src_group} (layer {src_layer})")
    bad = list(dict.fromkeys(bad))
    assert bad == [], "imports against the data flow:\n  " + "\n  ".join(bad)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over runtime imports."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in ALL_IMPORTS:
        if not imp.type_only and not imp.lazy and imp.target in graph:
            graph[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycles():
    cycles = _cycles()
    detail = []
    for component in cycles:
        members = set(component)
        edges = list(dict.fromkeys(str(i) for i in ALL_IMPORTS
                                   if i.source in members and i.target in members and not i.type_only and not i.lazy))
        detail.append(" <-> ".join(component) + "\n    " + "\n    ".join(edges))
    assert cycles == [], "import cycles:\n  " + "\n  ".join(detail)


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in MODULES.values()))
def test_modules_stay_small(path):
    if path in LINE_EXEMPT:
        return
    lines = len((ROOT / path).read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path} has {lines} lines (> {MAX_LINES}): split it along its seams"


# -- the checker checks -------------------------------------------------------------------------------


def test_the_map_and_the_resolver_see_what_they_should():
    assert layer_of("auditor") == (7, "entry") and layer_of("auditor.testing.audits") == (4, "testing")
    assert layer_of("auditor.testing.models") == (0, "core") and layer_of("auditor.store.store") == (4, "store")
    # `from auditor import __version__` is the version module, not the front door
    assert _resolve("auditor", "__version__") == "auditor._version"
    assert _resolve("auditor.audit", "Auditor") == "auditor.audit.replay"
    assert _resolve("auditor.check", "exit_codes") == "auditor.check.exit_codes"
    targets = {(i.target, i.type_only) for i in imports_of("auditor.report.build")}
    assert ("auditor.audit.runs", False) in targets and ("auditor.store", True) in targets
    # function-level imports are seen too
    assert "auditor.audit.replay" in {i.target for i in imports_of("auditor.audit.runs")}
