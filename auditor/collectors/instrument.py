"""OpenTelemetry capture of agent runs that talk to an OpenAI-compatible server (vLLM).

`OpenAIInstrumentor` wraps two APIs of the ``openai`` client (sync and async, streaming and
not): ``chat.completions.create`` and the Responses API's ``responses.create`` (which the
``stream`` helpers and tool runners call too), and both ``parse`` methods (structured outputs).
Each call becomes a ``chat {model}`` CLIENT span with the GenAI attributes, the input/output
messages, the tool definitions and the usage, and a W3C ``traceparent`` header is injected into
the request so vLLM's ``llm_request`` span joins the same trace. `tool_span` / `traced_tool`
make ``execute_tool {name}`` spans, `agent_span` the ``invoke_agent {name}`` root span of a run.

Both APIs give the same span shape (``gen_ai.operation.name`` = ``chat``; ``openai.api.type``
says which API), so a run assembles into a trajectory the same way. For the Responses API:
``instructions`` is the first (system) input message; ``input`` (a string, or a list of items:
messages, ``function_call`` items (assistant tool calls, keyed by ``call_id``),
``function_call_output`` items (tool results), ``reasoning`` items) and the response's
``output`` items become messages, consecutive assistant-side items (reasoning, text, tool calls)
making one assistant message; ``status`` (+ ``incomplete_details``) gives the finish reason
(``stop``, ``tool_calls``, ``length``, ...). A request that continues a stored response
(``previous_response_id``) sends only its new items; when this instrumentor recorded that
response, its history is put back in front of them, so the span holds the whole conversation the
model saw. History kept server-side in a ``conversation`` object is not rebuilt.

Content capture is ON by default (this is an auditor: without the text nothing can be
attributed). Turn it off with ``capture_content=False`` or the environment variable
``AUDITOR_CAPTURE_CONTENT=0`` (which wins, so operators can switch it off without code changes).

This module is the public import path; the parts live in `openai_instrumentor` (the wrapping and
the request side), `openai_results` and `openai_streams` (the response side), `genai_messages`
(OpenAI wire format -> GenAI messages), `agent_spans` (agent and tool spans, for any client) and
`capture` (the scope, the capture switch and the conversation id they share).

Example::

    provider = setup_tracing(jsonl="run.jsonl")
    OpenAIInstrumentor(tracer_provider=provider).instrument()
    with agent_span("fixer", conversation_id="c1"):
        reply = client.chat.completions.create(model="m", messages=msgs, tools=tools)
        for call in reply.choices[0].message.tool_calls or []:
            with tool_span(call.function.name, call.id, call.function.arguments) as t:
                t.set_result(run_tool(call))
    provider.shutdown()

or, with the Responses API::

    resp = client.responses.create(model="m", instructions=system, input=items, tools=tools)
    for item in resp.output:
        if item.type == "function_call":
            with tool_span(item.name, item.call_id, item.arguments) as t:
                t.set_result(run_tool(item))

A guard judges every tool call before the caller sees it (`auditor.guard.Guard`; see
`auditor.collectors.guarding`)::

    OpenAIInstrumentor(tracer_provider=provider).instrument(guard=Guard(), on_unsupported="raise")
    try:
        reply = client.chat.completions.create(model="m", messages=msgs, tools=tools)
    except UnsupportedToolCall as blocked:
        print(blocked.verdict.message)          # why, with the evidence; the tool never ran
"""

from __future__ import annotations

from auditor.collectors.agent_spans import ToolSpan, agent_span, tool_span, traced_tool
from auditor.collectors.capture import CAPTURE_ENV, SCOPE_NAME, SCOPE_VERSION
from auditor.collectors.genai_messages import (openai_message_to_genai, openai_tools_to_genai, responses_finish_reason,
                                               responses_input_to_genai, responses_items_to_genai,
                                               responses_output_to_genai)
from auditor.collectors.guarding import ToolCallJudge, UnsupportedToolCall
from auditor.collectors.openai_instrumentor import SUPPORTED_OPENAI, TESTED_OPENAI, OpenAIInstrumentor

__all__ = [
    "OpenAIInstrumentor", "agent_span", "tool_span", "traced_tool", "ToolSpan", "UnsupportedToolCall", "ToolCallJudge",
    "openai_message_to_genai", "openai_tools_to_genai", "responses_items_to_genai", "responses_input_to_genai",
    "responses_output_to_genai", "responses_finish_reason",
    "SUPPORTED_OPENAI", "TESTED_OPENAI", "SCOPE_NAME", "SCOPE_VERSION", "CAPTURE_ENV",
]
