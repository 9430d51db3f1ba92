"""The guard tests' conversation, tool and strict policy (tests/guard)."""

from __future__ import annotations

MSGS = [{"role": "system", "content": "you are a helpful agent"}, {"role": "user", "content": "read the file notes"}]
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "read a file",
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]
#: the user's request counted as data and the support rule with a threshold the tiny random model
#: cannot meet: every call is blocked
STRICT = {"authority_kinds": ["system"], "data_kinds": ["user_request", "tool_output"], "threshold": 0.999,
          "decide": "support"}

