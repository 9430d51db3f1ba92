"""Which SQL `audit query` runs: one read-only statement, classified by DuckDB's own parser.

``duckdb.extract_statements`` gives each statement's type; a SELECT is then serialized to its
syntax tree (``json_serialize_sql``) because a SELECT may hide a write in a CTE or subquery
(``WITH d AS (DELETE ... RETURNING *) SELECT ...`` parses as a SELECT). PIVOT without an ``IN``
list parses as several statements (DuckDB first creates the enum of its columns) and cannot be
serialized; it is allowed when no keyword in it writes. The read-only connection stays the last
guard: this module exists to refuse early and to name what was refused correctly.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import duckdb


class QueryRefused(ValueError):
    """The SQL is not a single read-only statement."""


_T = duckdb.StatementType
_READS = "SELECT, WITH, FROM, PIVOT, UNPIVOT, SHOW, DESCRIBE, SUMMARIZE, VALUES or EXPLAIN of one of them"
# query nodes of a read: anything else in the tree (INSERT_QUERY_NODE, DELETE_QUERY_NODE...) writes
_READ_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(ANALYZE\s+|ANALYSE\s+)?", re.IGNORECASE)
# words that write or reach outside the database; a PIVOT (MULTI statement) holding one is refused
_WRITE_WORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER", "COPY", "ATTACH",
                          "DETACH", "EXPORT", "IMPORT", "INSTALL", "LOAD", "TRUNCATE", "CHECKPOINT", "VACUUM",
                          "PRAGMA", "SET", "RESET", "CALL", "USE"})
_serializer_lock = threading.Lock()
_serializer: duckdb.DuckDBPyConnection | None = None


def _tokens(sql: str) -> list[tuple[str, bool]]:
    """The statement's tokens as ``(text, is_keyword)``, in order (empty if it cannot be tokenized)."""
    try:
        tokens = duckdb.tokenize(sql)
    except Exception:  # noqa: BLE001 - naming is best effort
        return []
    out = []
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        out.append((sql[start:end].strip(), kind == duckdb.token_type.keyword))
    return out


def statement_name(sql: str) -> str:
    """What a statement is, in the user's words: its leading keywords (``IMPORT DATABASE``,
    ``FORCE INSTALL``, ``CREATE OR REPLACE TABLE``), not DuckDB's internal statement type (which
    calls IMPORT a PRAGMA and INSTALL a LOAD)."""
    words: list[str] = []
    for text, keyword in _tokens(sql)[:4]:
        if not keyword:
            break
        words.append(text.upper())
    return " ".join(words) or "this"


def _query_nodes(tree: Any, out: set[str]) -> set[str]:
    """Types of every query node (a dict with ``modifiers`` and ``cte_map``) in a serialized tree."""
    if isinstance(tree, dict):
        if "modifiers" in tree and isinstance(tree.get("type"), str):
            out.add(tree["type"])
        for v in tree.values():
            _query_nodes(v, out)
    elif isinstance(tree, list):
        for v in tree:
            _query_nodes(v, out)
    return out


def _syntax_tree(sql: str) -> dict[str, Any] | None:
    """``json_serialize_sql`` of a SELECT on a private in-memory connection (None if it fails)."""
    global _serializer
    with _serializer_lock:
        if _serializer is None:
            _serializer = duckdb.connect(":memory:")
        try:
            row = _serializer.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
        except duckdb.Error:
            return None
    tree = json.loads(row[0]) if row and row[0] else None
    return None if tree is None or tree.get("error") else tree


def _refuse(what: str) -> QueryRefused:
    return QueryRefused(f"{what} statements are refused: `audit query` is read-only and runs only {_READS}")


def check_read_only(sql: str) -> str:
    """Return the statement (without a trailing ``;``) if it is one read-only statement (see
    ``_READS``); raise `QueryRefused` naming what it is otherwise."""
    try:
        statements = duckdb.extract_statements(sql)
    except (duckdb.Error, ValueError) as exc:  # ValueError: a statement type the binding does not know
        raise QueryRefused(f"could not parse the SQL: {exc}") from exc
    if not statements:
        raise QueryRefused("no SQL statement given")
    if len(statements) > 1:
        raise QueryRefused(f"one statement at a time, got {len(statements)}")
    st = statements[0]
    query = st.query.strip().rstrip(";").strip()
    try:
        kind = st.type
    except ValueError:  # a statement type newer than the binding's enum (e.g. UPDATE EXTENSIONS)
        raise _refuse(statement_name(query)) from None
    if kind == _T.EXPLAIN:
        check_read_only(_EXPLAIN.sub("", query, count=1))
        return query
    if kind == _T.SELECT:
        tree = _syntax_tree(query)
        if tree is not None:
            writes = sorted(_query_nodes(tree, set()) - _READ_NODES)
            if writes:
                what = " and ".join(w.removesuffix("_QUERY_NODE").removesuffix("_NODE") for w in writes)
                raise QueryRefused(f"{what} inside a query is refused (a data-modifying WITH clause or subquery): "
                                   f"`audit query` is read-only and runs only {_READS}")
        return query
    if kind == _T.MULTI:  # PIVOT without IN (...): DuckDB plans it as CREATE TYPE + SELECT
        if _EXPLAIN.match(query):
            check_read_only(_EXPLAIN.sub("", query, count=1))
            return query
        words = [t.upper() for t, keyword in _tokens(query) if keyword]
        lead = words[0] if words else ""
        if lead in ("PIVOT", "WITH", "FROM", "SELECT") and not _WRITE_WORDS & set(words):
            return query
        if lead not in ("PIVOT", "WITH", "FROM", "SELECT"):
            raise _refuse(statement_name(query))
        bad = next(w for w in words if w in _WRITE_WORDS)
        raise QueryRefused(f"{bad} inside a PIVOT is refused: `audit query` is read-only and runs only {_READS}")
    raise _refuse(statement_name(query))


class QueryTimeout(RuntimeError):
    """A query ran longer than its time limit and was interrupted."""

    def __init__(self, seconds: float):
        super().__init__(f"the query ran longer than {seconds:g} s and was stopped (raise --timeout, "
                         "or narrow it with WHERE / LIMIT)")
        self.seconds = seconds


class Deadline:
    """Interrupts a DuckDB connection after ``seconds`` (``connection.interrupt()`` from a timer
    thread); ``fired`` says whether it did. None or <= 0: no limit."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seconds: float | None):
        self.seconds = seconds
        self.fired = False
        self._timer: threading.Timer | None = None
        if seconds is not None and seconds > 0:
            self._timer = threading.Timer(seconds, self._fire, args=(con,))
            self._timer.daemon = True

    def _fire(self, con: duckdb.DuckDBPyConnection) -> None:
        self.fired = True
        con.interrupt()

    def __enter__(self) -> "Deadline":
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
