"""Which SQL `audit query` runs: one read-only statement, checked by DuckDB's own parser."""

from __future__ import annotations

import re

import duckdb


class QueryRefused(ValueError):
    """The SQL is not a single read-only statement."""


_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(ANALYZE\s+|ANALYSE\s+)?", re.IGNORECASE)


def check_read_only(sql: str) -> str:
    """Return the statement (without a trailing ``;``) if it is one SELECT / WITH / SHOW / DESCRIBE /
    SUMMARIZE / FROM / EXPLAIN statement; raise `QueryRefused` saying why otherwise."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"could not parse the SQL: {exc}") from exc
    if not statements:
        raise QueryRefused("no SQL statement given")
    if len(statements) > 1:
        raise QueryRefused(f"one statement at a time, got {len(statements)}")
    st = statements[0]
    if st.type not in _ALLOWED:
        kind = st.type.name
        raise QueryRefused(
            f"{kind} statements are refused: `audit query` is read-only and runs only "
            "SELECT, WITH, SHOW, DESCRIBE, SUMMARIZE or EXPLAIN"
        )
    query = st.query.strip().rstrip(";").strip()
    if st.type == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN.sub("", query, count=1)
        check_read_only(inner)
    return query
