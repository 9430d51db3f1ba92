"""Audit trajectories: segment, render through the replay model, attribute every action, roll up.

    from auditor.audit import Auditor, audit_trajectory
    auditor = Auditor()                      # the embedded SmolLM2, FlashTrace, 1 hop
    audit = auditor.audit(traj)              # -> TrajectoryAudit
    for act in audit.actions:
        print(act.action.summary, [(d.label, round(d.share, 2)) for d in act.top(3)])
    ranked_drivers(audit, top=3)             # the same with provenance and text, as plain dicts
    for out in audit_each(trajs, auditor=auditor):   # many as one run (`auditor.audit.runs`)
        ...

Per trajectory there is ONE forward pass (`attribute_many`); each action is a target with its
own FlashTrace split, taken from the segments that end before the action starts. A trajectory
with contexts (one per model call, `auditor.trajectory.Context`: a coding agent that re-sends the
files as they are now with every request) gets one forward per context that holds actions, and
each action is explained within its own call's context, never within text its call was not sent;
an append-only trajectory (no contexts) is audited exactly as before. The split:

- input ``X``: tokens of ``system``, ``user_request``, ``user_constraint``, ``tool_output``,
  ``file_context`` and ``tool_definition`` segments (each tool offered to the model, as the
  template or the renderer wrote it: a tool description can drive an action);
- intermediate ``R``: tokens of ``reasoning`` and ``prior_turn`` segments and of earlier actions
  (an earlier action is a prior turn from this action's point of view);
- output ``O``: the action's own tokens (a tool call from its name to the end of its arguments,
  an edit block, the final answer).

Each argument of a tool call (and an edit's path, search and replace text) is a further target of
the same forward: ``O`` is the value's tokens and the call's tokens before it join ``R``. The
action's explanation answers "what drove this call"; an argument's answers "what chose this
recipient", which is what the CI check needs when a body rightly summarises data.

Template tokens (role markers, special tokens, the text a template or the renderer adds around
what it carries, such as the ``<tools>`` wrapper and preamble around the tool definitions and
``<tool_call>`` wrappers) belong to no segment, so they are in neither ``X`` nor ``R``: they can
take part of a hop's mass (reported as ``by_kind["template"]`` in each `HopFlow`) but that mass is
not propagated and no driver gets it. A tool definition the template rewrote beyond its JSON is
left unplaced (`RenderedTrajectory.unplaced`) and its tokens are template tokens. A driver's
``score`` is the sum of the final token scores ``S`` over its tokens and its ``share`` is that score
over the summed scores of all the action's input segments, so the shares of an action's drivers
sum to 1 (or all are 0 when nothing reached the inputs).

Making tool definitions segments (they were template tokens before) changes no other segment's
score, with any number of hops: each hop's span pass is weighted by the output (hop 0) or by the
previous hop's scores on ``R`` (hops 1..K), never by ``X``; ``X`` only selects which positions of
each hop's scores are added into ``S``, and ``R`` is unchanged since tool definitions are input.
So the definitions gain the score their tokens had as template tokens, every other driver's
``score`` stays the same and its ``share`` shrinks by one common factor: ratios of shares, such as
`audit check`'s support A / (A + D), do not move. The hop by-kind mass moves from ``template`` to
``tool_definition`` likewise. The baselines: ``attention`` renormalises over ``X``, by one factor
again; ``loo`` scores each segment by its own ablation, so the other scores hold too, but loo
scores can be negative, and when the tool definitions pull an action's summed score to zero or
below, every share is 0 (no evidence), as happens with any segment that does so.
"""

from __future__ import annotations

import fnmatch
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.audit.prefixes import DEFAULT_BUDGET_BYTES, PrefixCaches
from auditor.audit.rollup import compact, drivers_of, kind_of_positions, positions, ranked_drivers, roll_up
from auditor.audit.schema import ActionAttribution, ArgumentAttribution, ContextAudit, RunInfo, TrajectoryAudit
from auditor.provenance import ProvenanceIndex, provenance_of
from auditor.segments.arguments import ArgumentSpan, argument_spans
from auditor.segments.render import RenderedTrajectory, render_trajectory
from auditor.segments.segment import segment_trajectory
from auditor.trajectory import Segment, Trajectory
from auditor.actions import with_actions

Progress = Callable[[int, int], None]


def auditor_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("auditor")
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        return "0.0.0+source"


class Auditor:
    """A replay model plus attribution settings; audits trajectories one forward pass each.

    model: None (the embedded SmolLM2), a local model directory, or a ``(model, tokenizer)``
        pair already loaded (any Hugging Face causal LM the engine supports).
    method: an attribution method from `auditor.attribution.list_methods()`.
    hops: FlashTrace hops through the intermediate (model-generated) tokens.
    dtype, device: how to load the model (ignored for a loaded pair, except that ``device``
        moves it).
    max_tokens: the context limit; default the model's ``max_position_embeddings`` capped at
        8192. Longer trajectories drop middle turns (see `auditor.segments.render`).
    chat_template: a Jinja chat template (its text, or a path to a ``.jinja`` file) to render
        with instead of the tokenizer's own, e.g. the template the agent was served with.
    arguments: also explain every argument of each tool call (and the path, search and replace
        text of each edit) as its own target, from the same forward pass (`ActionAttribution.arguments`;
        the check judges actions by their decisive arguments). Costs one target per argument. A list
        of name globs explains only the matching arguments (e.g. the check's decisive ones).
    prefix_cache_bytes: memory for the states of prefixes that a trajectory's contexts share (a
        coding session's system prompt, repository map, history), each run through the model once
        (`auditor.audit.prefixes`); 0 runs every context whole. Results agree to float error.
    causal: also measure causal deltas (`auditor.audit.causal`): each call's, head's and argument
        value's log-probability change when the user's request is neutralised and when its top data
        drivers are removed (`ActionAttribution.causal`, `ArgumentAttribution.causal`). Costs one
        forward of the tokens after each distinct variant's first edit (a handful per trajectory).
    states: a `StateCacheStore` (``auditor.attribution``) to take each capture from: a trajectory
        whose rendered tokens extend (or share a prefix with) one audited before is captured only
        from where they differ (the KV cache of the shared part; results equal a full capture to
        float error). What a runtime guard uses as a conversation grows a turn at a time. Contexts
        sharing prefixes within one trajectory use ``prefix_cache_bytes`` instead.

    Every audit also records where each argument value literally occurs before its action
    (`ActionAttribution.provenance`, `auditor.provenance`): text matching, no model.
    chunk_size, **method_options: passed to `attribute_many`.
    """

    def __init__(
        self,
        model: Any = None,
        *,
        method: str = "flashtrace",
        hops: int = 1,
        dtype: str = "float32",
        device: str | None = None,
        max_tokens: int | None = None,
        model_name: str | None = None,
        chat_template: str | os.PathLike[str] | None = None,
        arguments: bool | Sequence[str] = True,
        prefix_cache_bytes: int = DEFAULT_BUDGET_BYTES,
        causal: bool = False,
        states: Any = None,
        **method_options: Any,
    ) -> None:
        from auditor.attribution import get_method

        get_method(method)  # unknown names fail now, listing the valid ones
        self.prefix_cache_bytes = int(prefix_cache_bytes)
        self.method = method
        self.hops = int(hops)
        self.dtype = dtype
        self.max_tokens = max_tokens
        self.arguments: bool | list[str] = (bool(arguments) if isinstance(arguments, bool) or arguments is None
                                             else [str(p) for p in arguments])
        self.causal = bool(causal)
        self.method_options = method_options
        self.states = states
        if isinstance(model, tuple):
            self.model, self.tokenizer = model
            if device:
                self.model.to(device)
            self.model_name = model_name or str(
                getattr(self.model.config, "_name_or_path", "") or self.model.config.model_type
            )
        else:
            from auditor.model_registry import EMBEDDED_NAME, load_model

            self.model, self.tokenizer = load_model(model, dtype=dtype, device=device)
            if model_name:
                self.model_name = model_name
            elif model is None or str(model) in {EMBEDDED_NAME, "default", "embedded"}:
                self.model_name = EMBEDDED_NAME
            else:
                self.model_name = os.fspath(model)
        self.chat_template = None
        if chat_template is not None:
            import copy
            from pathlib import Path

            text = os.fspath(chat_template)
            if "{%" not in text and "{{" not in text:
                text = Path(text).read_text()
            self.tokenizer = copy.copy(self.tokenizer)  # never change the caller's tokenizer
            self.tokenizer.chat_template = text
            self.chat_template = text
        try:
            self.device = str(next(self.model.parameters()).device)
            self.model_dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        except StopIteration:  # pragma: no cover
            self.device, self.model_dtype = "cpu", dtype

    def _explains(self, name: str) -> bool:
        if isinstance(self.arguments, bool):
            return self.arguments
        return any(fnmatch.fnmatchcase(name, p) for p in self.arguments)

    # -- pieces, usable on their own ---------------------------------------------------------------
    def render(self, traj: Trajectory) -> RenderedTrajectory:
        """Segment and render ``traj`` (no attribution)."""
        traj = with_actions(traj)
        return render_trajectory(traj, self.tokenizer, segment_trajectory(traj), max_tokens=self.max_tokens,
                                 model=self.model)

    @property
    def settings(self) -> dict[str, Any]:
        """What shapes this auditor's results, JSON-able: what a derived run id hashes
        (`auditor.audit.runs.run_id_for`; `audit_each(trajs, auditor=self)` audits many as one run)."""
        out: dict[str, Any] = {"model": self.model_name, "method": self.method, "hops": self.hops,
                               "dtype": self.dtype, "max_tokens": self.max_tokens, "arguments": self.arguments}
        if self.causal:
            out["causal"] = True
        if self.chat_template is not None:
            import hashlib

            out["chat_template_sha1"] = hashlib.sha1(self.chat_template.encode()).hexdigest()
        out.update({k: v for k, v in self.method_options.items() if isinstance(v, (int, float, str, bool))})
        return out

    def run_info(self, run_id: str | None = None) -> RunInfo:
        settings: dict[str, Any] = {"max_tokens": self.max_tokens, "arguments": self.arguments}
        if self.causal:
            settings["causal"] = True
        if self.chat_template is not None:
            import hashlib

            settings["chat_template_sha1"] = hashlib.sha1(self.chat_template.encode()).hexdigest()
        settings.update({k: v for k, v in self.method_options.items() if isinstance(v, (int, float, str, bool))})
        return RunInfo(
            run_id=run_id or uuid.uuid4().hex,
            model=self.model_name,
            method=self.method,
            hops=self.hops,
            auditor_version=auditor_version(),
            device=self.device,
            dtype=self.model_dtype,
            settings=settings,
        )

    # -- auditing ------------------------------------------------------------------------------------
    def audit(self, traj: Trajectory, progress: Progress | bool | None = None, *, run: RunInfo | None = None,
              actions: Iterable[str] | None = None) -> TrajectoryAudit:
        """Attribute every action of ``traj``; ``progress`` is a ``callable(done, total)`` over its
        actions, or True for a rich progress bar. ``actions``: ids of the only actions to attribute
        (the others stay action segments, so the rendering and every score are those of a whole
        audit; a runtime guard judges only the new call).

        A trajectory with contexts is replayed per context (`_audit_contexts`): each action within
        the messages its own model call was sent."""
        if progress is True:
            with _bars() as bars:
                task = bars.add_task(_short(traj.id), total=None)
                return self.audit(traj, lambda d, t: bars.update(task, completed=d, total=t), run=run, actions=actions)
        chosen = None if actions is None else set(actions)
        start = time.perf_counter()
        run = run or self.run_info()
        traj = with_actions(traj)
        if traj.contexts:
            return self._audit_contexts(traj, progress, run, start, chosen)
        part = self._audit_part(traj, progress if callable(progress) else None, chosen=chosen)
        return TrajectoryAudit(
            run=run,
            trajectory=part.rendered.trajectory,
            segments=part.rendered.segments,
            tokens=part.rendered.tokens,
            actions=part.attributions,
            dropped=part.rendered.dropped,
            unplaced=part.unplaced,
            notes=part.rendered.notes,
            forward_seconds=part.forward_seconds,
            causal_seconds=part.causal_seconds,
            seconds=time.perf_counter() - start,
        )

    def _audit_contexts(self, traj: Trajectory, progress: Progress | bool | None, run: RunInfo,
                        start: float, chosen: set[str] | None = None) -> TrajectoryAudit:
        """One forward per context that holds actions, in call order (the trajectory's own messages
        last, for actions without a context). Each context is audited as the trajectory its call saw
        (`Trajectory.for_context`): segments get the context's id in theirs and carry ``context_id``;
        actions keep their ids and ``context_id``. Contexts without actions are not replayed.

        Contexts share prefixes (system prompt, repository map, history): each shared prefix is
        run once (`auditor.audit.prefixes`, unless ``prefix_cache_bytes`` is 0 or the method keeps
        no states), and ``ContextAudit.reused_tokens`` says how many tokens of each context were
        not run again.
        """
        used = {a.context_id for a in traj.actions}
        order: list[str | None] = [c.id for c in traj.contexts if c.id in used]
        if None in used:
            order.append(None)
        total = len(traj.actions)
        done = 0
        segments: list[Segment] = []
        attributions: dict[str, ActionAttribution] = {}
        contexts: list[ContextAudit] = []
        own_tokens: list[str] = []
        dropped: list[str] = []
        unplaced: list[str] = []
        notes: list[str] = []
        forward = causal = 0.0
        by_id = {a.id: a for a in traj.actions}
        subs = [traj.for_context(cid) for cid in order]
        renders = [self.render(sub) for sub in subs]
        prefixes = self._prefix_caches(renders)
        for k, (cid, sub, rendered) in enumerate(zip(order, subs, renders)):
            offset = done
            tick = (lambda d, t, o=offset: progress(o + d, total)) if callable(progress) else None
            reused: list[int] = [0]

            def states(k: int = k, reused: list[int] = reused) -> tuple[Any, float]:
                cache, reused[0], seconds = prefixes.cache_for(k) if prefixes is not None else (None, 0, 0.0)
                return cache, seconds

            part = self._audit_part(sub, tick, rendered=rendered, states=states, chosen=chosen)
            done += len(sub.actions)
            where = "" if cid is None else f"request {traj.context_number(cid)} ({cid}): "
            segments += [s.model_copy(update={"context_id": cid}) for s in part.rendered.segments]
            for att in part.attributions:
                attributions[att.action.id] = att.model_copy(update={"action": by_id[att.action.id]})
            if cid is None:
                own_tokens = part.rendered.tokens
            else:
                contexts.append(ContextAudit(context_id=cid, tokens=part.rendered.tokens,
                                             forward_seconds=part.forward_seconds, reused_tokens=reused[0]))
            dropped += [where + d for d in part.rendered.dropped]
            unplaced += [where + u for u in part.unplaced]
            notes += [n for n in part.rendered.notes if n not in notes]
            forward += part.forward_seconds
            causal += part.causal_seconds
        return TrajectoryAudit(
            run=run, trajectory=traj, segments=segments, tokens=own_tokens,
            actions=[attributions[a.id] for a in traj.actions if a.id in attributions],
            dropped=dropped, unplaced=unplaced, notes=notes, forward_seconds=forward, causal_seconds=causal,
            seconds=time.perf_counter() - start, contexts=contexts,
        )

    def _prefix_caches(self, renders: list[RenderedTrajectory]) -> PrefixCaches | None:
        """Shared-prefix states for these renderings, when worth it and the method keeps states."""
        from auditor.attribution import get_method

        if (self.prefix_cache_bytes <= 0 or len(renders) < 2 or not get_method(self.method).uses_cache
                or self.method_options.get("attention", "recompute") == "store"):
            return None
        return PrefixCaches(self.model, [r.input_ids for r in renders], self.prefix_cache_bytes)

    def _audit_part(self, traj: Trajectory, progress: Progress | None, *, rendered: RenderedTrajectory | None = None,
                    states: Callable[[], tuple[Any, float]] | None = None,
                    chosen: set[str] | None = None) -> "_Part":
        """Render ``traj`` (no contexts; or take its ``rendered`` form) and attribute its actions
        from one forward pass; ``states()``, when given, returns the sequence's states (or None:
        the engine captures them) and the seconds that took. ``chosen``: the only action ids to
        attribute (None: all)."""
        from auditor.attribution import Target, attribute_many, get_method

        rendered = rendered or self.render(traj)
        traj = rendered.trajectory
        segs = rendered.segments
        targets: list[Target] = []
        plans: list[tuple[Any, Segment, list[Segment], list[Segment]]] = []
        arg_plans: list[list[ArgumentSpan]] = []
        unplaced = list(rendered.unplaced)
        for action in traj.actions:
            if action.id in rendered.dropped_actions or (chosen is not None and action.id not in chosen):
                continue
            out = rendered.action_segment(action.id)
            if out is None:
                unplaced.append(f"action {action.id} ({action.summary}) not attributed: its tokens could not be placed")
                continue
            ts = out.token_start or 0
            before = [s for s in segs if (s.token_end or 0) <= ts and s.id != out.id]
            inputs = [s for s in before if s.kind.group == "input"]
            inter = [s for s in before if s.kind.group != "input"]
            x, r, spans = positions(inputs), positions(inter), [(s.token_start or 0, s.token_end or 0) for s in inputs] or None
            targets.append(Target(output=range(ts, out.token_end or ts), reasoning=r, inputs=x, spans=spans))
            plans.append((action, out, inputs, inter))
            args = argument_spans(action, rendered.text, rendered.offsets, ts, out.token_end or ts) if self.arguments else []
            # an argument's target: its value's tokens; the call's tokens before it are generated
            # text the value follows from, so they join the reasoning R (hop 1 resolves them)
            args = [a for a in args if a.token_start < a.token_end and self._explains(a.name)]
            for a in args:
                targets.append(Target(output=range(a.token_start, a.token_end),
                                      reasoning=r + list(range(ts, a.token_start)), inputs=x, spans=spans))
            arg_plans.append(args)
        results = []
        cache, state_seconds = None, 0.0
        if targets:
            on_target = None
            if progress is not None:
                # progress counts actions: target k (actions and their arguments, in order) maps to
                # the number of actions whose targets are all done
                ends, n = [], 0
                for args in arg_plans:
                    n += 1 + len(args)
                    ends.append(n)
                done = [sum(e <= k for e in ends) for k in range(n + 1)]
                progress(0, len(plans))
                on_target = lambda d, t: progress(done[d], len(plans)) if d in ends else None  # noqa: E731
            if states is not None:  # the shared prefix's states (auditor.audit.prefixes)
                cache, state_seconds = states()
            elif self.states is not None and get_method(self.method).uses_cache:  # a StateCacheStore (the guard)
                t0 = time.perf_counter()
                cache = self.states.get_or_capture(self.model, rendered.input_ids)
                state_seconds = time.perf_counter() - t0
            results = attribute_many(self.model, rendered.input_ids, targets, method=self.method, hops=self.hops,
                                     progress=on_target, **({"cache": cache} if cache is not None else {}),
                                     **self.method_options)
        kinds = kind_of_positions(rendered)
        attributions = []
        k = 0
        for (action, out, inputs, inter), args in zip(plans, arg_plans):
            attr = roll_up(action, out, inputs, inter, results[k], kinds)
            arg_results = results[k + 1:k + 1 + len(args)]
            k += 1 + len(args)
            attr.arguments = [
                ArgumentAttribution(name=a.name, token_start=a.token_start, token_end=a.token_end,
                                    drivers=drivers_of(inputs, res.token_scores),
                                    flow_ratio=float(res.flow_ratios[0]) if res.flow_ratios else 0.0,
                                    token_scores=[compact(x) for x in res.token_scores[:a.token_start].tolist()])
                for a, res in zip(args, arg_results)
            ]
            attr.seconds += sum(float(res.info.get("seconds", 0.0)) for res in arg_results)
            attributions.append(attr)
        index = ProvenanceIndex(segs)
        for attr in attributions:
            attr.provenance = provenance_of(attr.action, index)
        causal_seconds = self._measure_causal(rendered, attributions) if self.causal else 0.0
        forward = float(results[0].info.get("forward_seconds", 0.0)) if results else 0.0
        if results and cache is not None:
            forward = state_seconds  # the shared prefix's states (when first made) and this sequence's own
        return _Part(rendered, attributions, unplaced, forward, causal_seconds)

    def _measure_causal(self, rendered: RenderedTrajectory, attributions: list[ActionAttribution]) -> float:
        """Fill each action's and argument's ``causal`` deltas; return the seconds."""
        from auditor.audit.causal import measure_actions

        t0 = time.perf_counter()
        measure_actions(self.model, self.tokenizer, rendered.input_ids, rendered.segments, attributions)
        return time.perf_counter() - t0

    def audit_many(self, trajs: Iterable[Trajectory], progress: bool | Progress | None = True) -> list[TrajectoryAudit]:
        """Audit several trajectories under one run id; ``progress=True`` shows rich bars (one over
        trajectories, one over the current trajectory's actions); a callable gets
        ``(done, total)`` over trajectories."""
        trajs = list(trajs)
        run = self.run_info()
        out: list[TrajectoryAudit] = []
        if progress is True:
            with _bars() as bars:
                overall = bars.add_task("trajectories", total=len(trajs))
                for traj in trajs:
                    task = bars.add_task(f"  {_short(traj.id)}", total=None)
                    out.append(self.audit(traj, lambda d, t, task=task: bars.update(task, completed=d, total=t), run=run))
                    bars.remove_task(task)
                    bars.advance(overall)
            return out
        for k, traj in enumerate(trajs):
            out.append(self.audit(traj, run=run))
            if callable(progress):
                progress(k + 1, len(trajs))
        return out


def audit_trajectory(traj: Trajectory, progress: Progress | bool | None = None, **kw: Any) -> TrajectoryAudit:
    """``Auditor(**kw).audit(traj)`` in one call (loads the model each time: use `Auditor` for many)."""
    return Auditor(**kw).audit(traj, progress)


# -- helpers ------------------------------------------------------------------------------------------


@dataclass
class _Part:
    """One rendered sequence, attributed: a trajectory without contexts, or one context of one."""

    rendered: RenderedTrajectory
    attributions: list[ActionAttribution]
    unplaced: list[str]
    forward_seconds: float
    causal_seconds: float = 0.0


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _bars():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=False)


__all__ = ["Auditor", "audit_trajectory", "ranked_drivers", "auditor_version"]
