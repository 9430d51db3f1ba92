"""Offline generators for the paper's RULER-style long-context tasks, with gold character spans.

Three families, named as in the paper's Table 1 (Appendix E.1):

- ``mq-q{k}``: needle-in-a-haystack, *multi-query*: ``k`` needles with distinct keys
  ("One of the special magic numbers for fearless-otter is: 4821937."); the question asks for
  the numbers of all ``k`` keys.
- ``mv-v{k}``: needle-in-a-haystack, *multi-value*: ``k`` needles share one key with different
  values; the question asks for all values of that key.
- ``vt-h{h}-c{c}``: variable tracking: ``c`` parallel chains, each a first assignment
  ``VAR QPZKD = 16398`` followed by ``h`` bindings ``VAR ABCDE = VAR QPZKD`` (so a chain has
  ``h + 1`` statements and ``h + 1`` variables); the question asks for every variable that holds
  the first chain's value. The other ``c - 1`` chains are distractors.

The haystack is synthetic essay-like filler built from word lists (no downloads, no digits, so
numbers only occur in needles). Everything is seeded: the same (task, seed, length, counter)
always gives the same examples.

Gold spans are half-open character spans into :attr:`TaskExample.prompt` (the user message):
every needle sentence for NIAH, every assignment statement of the *target* chain for VT, as the
paper defines the ground truth. :attr:`TaskExample.segments` lists every sentence / statement /
the question as spans too (the units leave-one-out removes).
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

#: Counts tokens of a text; the default is a rough 4-characters-per-token estimate.
TokenCounter = Callable[[str], int]

COT_INSTRUCTION = (
    "Think briefly, step by step, quoting the lines you need. "
    "Then write the final answer on its own line as 'Answer: ...'."
)
ANSWER_MARKER = "Answer:"

_SUBJECTS = [
    "The committee", "A small team", "The old librarian", "Our neighbour", "The village council",
    "Every student", "The night watchman", "A travelling painter", "The bakery owner", "My cousin",
    "The harbour master", "A young engineer", "The museum guide", "The gardener", "Her brother",
    "The school choir", "A quiet visitor", "The ship captain", "The editor", "The farmer",
]
_PREDICATES = [
    "reviewed the annual budget", "planted new trees along the road", "repaired the broken fence",
    "wrote a long letter to the mayor", "painted the front door green", "sorted the old maps",
    "cleaned the stone steps", "walked along the river", "closed the shop early",
    "read a story about distant islands", "cooked soup for the whole street", "fixed the clock tower",
    "counted the boats in the bay", "carried books to the attic", "watched the clouds drift east",
    "sang a song about the mountains", "opened the windows to let in fresh air",
    "collected apples from the orchard", "measured the length of the bridge",
    "argued about the best route home", "built a shelf for the kitchen", "fed the ducks by the pond",
    "traded stories with the baker", "swept the courtyard", "tuned the piano in the hall",
]
_TIMES = [
    "on Monday", "last spring", "after the storm", "before sunrise", "during the festival",
    "in the evening", "every winter", "at noon", "once the rain stopped", "without a word",
    "with great care", "in a hurry", "as the bells rang", "while it snowed", "that afternoon",
]
_CLOSERS = [
    "Nobody expected it.", "It was a calm day.", "The town remembered it for years.",
    "Some people laughed.", "The wind was cold.", "Everyone agreed it was worth the effort.",
    "It took longer than planned.", "The result surprised the neighbours.",
]
_ADJECTIVES = [
    "fearless", "quiet", "golden", "hidden", "silver", "brave", "gentle", "rapid", "ancient",
    "curious", "lucky", "frozen", "bright", "hollow", "mellow", "proud", "rustic", "sleepy",
]
_NOUNS = [
    "otter", "river", "falcon", "lantern", "harbor", "meadow", "castle", "comet", "willow",
    "anchor", "badger", "canyon", "garden", "pebble", "thistle", "violin", "walrus", "zephyr",
]


@dataclass(frozen=True)
class TaskSpec:
    """A parsed task name: family ``mq``/``mv``/``vt`` and its sizes."""

    family: str
    queries: int = 1  # mq: number of keys asked for
    values: int = 1  # mv: number of values of the one key
    hops: int = 0  # vt: bindings after the first assignment
    chains: int = 1  # vt: parallel chains (1 target + distractors)

    @property
    def name(self) -> str:
        if self.family == "mq":
            return f"mq-q{self.queries}"
        if self.family == "mv":
            return f"mv-v{self.values}"
        return f"vt-h{self.hops}-c{self.chains}"


_TASK_RE = re.compile(r"^(?:(mq)-?q(\d+)|(mv)-?v(\d+)|(vt)-?h(\d+)-?c(\d+))$")

#: The task set `audit eval all` and the benchmark run (small enough for SmolLM2-135M on a CPU).
#: ``mq-q1`` (a single needle) is not in the paper's Table 1, which starts at q2; it is here
#: because it is the one task SmolLM2-135M answers right, so its rows use the model's own
#: reasoning rather than gold traces.
DEFAULT_TASKS: tuple[str, ...] = ("mq-q1", "mq-q2", "mv-v2", "vt-h2-c3", "vt-h4-c1")


def parse_task(name: str) -> TaskSpec:
    """``mq-q2`` / ``mv-v4`` / ``vt-h2-c3`` (dashes optional, case-insensitive) -> TaskSpec."""
    m = _TASK_RE.match(name.strip().lower().replace("_", "-").replace(" ", ""))
    if not m:
        raise ValueError(
            f"unknown task {name!r}: use mq-q<K> (multi-query NIAH), mv-v<K> (multi-value NIAH) "
            f"or vt-h<H>-c<C> (variable tracking), e.g. {', '.join(DEFAULT_TASKS)}; or 'all'"
        )
    if m.group(1):
        spec = TaskSpec("mq", queries=int(m.group(2)))
    elif m.group(3):
        spec = TaskSpec("mv", values=int(m.group(4)))
    else:
        spec = TaskSpec("vt", hops=int(m.group(6)), chains=int(m.group(7)))
    if min(spec.queries, spec.values, spec.chains) < 1 or spec.hops < 0:
        raise ValueError(f"task {name!r}: sizes must be >= 1 (hops >= 0)")
    return spec


@dataclass
class TaskExample:
    """One generated example. Spans are half-open character spans into :attr:`prompt`."""

    task: str
    uid: str
    prompt: str  # the user message: context + question + instruction
    answers: list[str]  # every string a right answer must contain
    gold_spans: list[tuple[int, int]]  # needles / target-chain statements
    segments: list[tuple[int, int, str]]  # every sentence, needle, statement and the question
    gold_reasoning: str  # a short reasoning written by the generator (the "gold-trace" variant)
    gold_answer: str  # the final answer line's content, e.g. "4821937, 1180342"
    meta: dict[str, Any] = field(default_factory=dict)

    def gold_texts(self) -> list[str]:
        return [self.prompt[a:b] for a, b in self.gold_spans]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def approx_tokens(text: str) -> int:
    return max(1, round(len(text) / 4))


def _filler_sentence(rng: random.Random) -> str:
    s = f"{rng.choice(_SUBJECTS)} {rng.choice(_PREDICATES)} {rng.choice(_TIMES)}."
    if rng.random() < 0.25:
        s += " " + rng.choice(_CLOSERS)
    return s


def _unique_keys(rng: random.Random, k: int) -> list[str]:
    keys: list[str] = []
    while len(keys) < k:
        key = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}"
        if key not in keys:
            keys.append(key)
    return keys


def _unique_numbers(rng: random.Random, k: int, digits: int) -> list[str]:
    out: list[str] = []
    while len(out) < k:
        v = str(rng.randrange(10 ** (digits - 1), 10**digits))
        if v not in out and all(v not in o and o not in v for o in out):
            out.append(v)
    return out


def _unique_vars(rng: random.Random, k: int) -> list[str]:
    out: list[str] = []
    while len(out) < k:
        v = "".join(rng.choice(string.ascii_uppercase) for _ in range(5))
        if v not in out:
            out.append(v)
    return out


def _needle(key: str, value: str) -> str:
    return f"One of the special magic numbers for {key} is: {value}."


def _join_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _assemble(
    rng: random.Random,
    needles: list[tuple[str, bool]],
    question: str,
    length: int,
    count: TokenCounter,
    keep_order: bool,
) -> tuple[str, list[tuple[int, int]], list[tuple[int, int, str]]]:
    """Fill a haystack to about ``length`` tokens (whole prompt), insert the needles at seeded
    depths (in the given order when ``keep_order``), and return (prompt, gold spans, segments).

    ``needles`` holds (sentence, is_gold).
    """
    fixed = count(question) + sum(count(" " + s) for s, _ in needles) + 2
    budget = max(0, length - fixed)
    filler: list[str] = []
    used = 0
    while True:
        s = _filler_sentence(rng)
        c = count(" " + s)
        if used + c > budget and filler:
            break
        if used + c > budget:  # budget smaller than one sentence: no filler at all
            break
        filler.append(s)
        used += c
    # Needle slots: gaps 0..len(filler) between filler sentences; spread over the context.
    gaps = len(filler) + 1
    slots = sorted(rng.randrange(gaps) for _ in needles)
    order = list(range(len(needles)))
    if not keep_order:
        rng.shuffle(order)
    # Build the sequence of (sentence, kind) with needles placed before filler[slot].
    placed: dict[int, list[int]] = {}
    for pos, idx in zip(slots, order):
        placed.setdefault(pos, []).append(idx)
    pieces: list[tuple[str, str]] = []
    for gap in range(gaps):
        for idx in placed.get(gap, []):
            pieces.append((needles[idx][0], "gold" if needles[idx][1] else "distractor"))
        if gap < len(filler):
            pieces.append((filler[gap], "filler"))
    text = ""
    gold: list[tuple[int, int]] = []
    segments: list[tuple[int, int, str]] = []
    for sentence, kind in pieces:
        if text:
            text += " "
        start = len(text)
        text += sentence
        segments.append((start, len(text), kind))
        if kind == "gold":
            gold.append((start, len(text)))
    text += "\n\n"
    q_start = len(text)
    text += question
    segments.append((q_start, len(text), "question"))
    return text, gold, segments


def _make_niah(spec: TaskSpec, rng: random.Random, length: int, count: TokenCounter) -> dict[str, Any]:
    if spec.family == "mq":
        keys = _unique_keys(rng, spec.queries)
        values = _unique_numbers(rng, spec.queries, 7)
        pairs = list(zip(keys, values))
        question = (
            f"What are the special magic numbers for {_join_list(keys)} mentioned in the text above? "
            + COT_INSTRUCTION
        )
    else:
        key = _unique_keys(rng, 1)[0]
        values = _unique_numbers(rng, spec.values, 7)
        pairs = [(key, v) for v in values]
        question = (
            f"What are all the special magic numbers for {key} mentioned in the text above? "
            + COT_INSTRUCTION
        )
    needles = [(_needle(k, v), True) for k, v in pairs]
    prompt, gold, segments = _assemble(rng, needles, question, length, count, keep_order=False)
    if spec.family == "mq":  # answer in the question's key order
        reasoning = " ".join(f"The text says the special magic number for {k} is {v}." for k, v in pairs)
        ordered = values
    else:  # values in their order of appearance in the context
        order = sorted(range(len(pairs)), key=lambda i: prompt.index(needles[i][0]))
        ordered = [pairs[i][1] for i in order]
        reasoning = f"The text gives these special magic numbers for {pairs[0][0]}: {_join_list(ordered)}."
    return dict(prompt=prompt, gold=gold, segments=segments, answers=list(values), reasoning=reasoning,
                answer=", ".join(ordered), meta={"keys": [k for k, _ in pairs], "values": values})


def _make_vt(spec: TaskSpec, rng: random.Random, length: int, count: TokenCounter) -> dict[str, Any]:
    n_vars = (spec.hops + 1) * spec.chains
    names = _unique_vars(rng, n_vars)
    values = _unique_numbers(rng, spec.chains, 5)
    chains: list[list[str]] = [names[c * (spec.hops + 1):(c + 1) * (spec.hops + 1)] for c in range(spec.chains)]
    statements: list[list[str]] = []
    for c, chain in enumerate(chains):
        st = [f"VAR {chain[0]} = {values[c]}."]
        st += [f"VAR {chain[i]} = VAR {chain[i - 1]}." for i in range(1, len(chain))]
        statements.append(st)
    # Interleave the chains while keeping each chain's order: a seeded merge.
    cursors = [0] * spec.chains
    merged: list[tuple[str, bool]] = []
    while any(cursors[c] < len(statements[c]) for c in range(spec.chains)):
        live = [c for c in range(spec.chains) if cursors[c] < len(statements[c])]
        c = rng.choice(live)
        merged.append((statements[c][cursors[c]], c == 0))
        cursors[c] += 1
    target = values[0]
    question = (
        f"Find all variables that are assigned the value {target} in the text above. " + COT_INSTRUCTION
    )
    prompt, gold, segments = _assemble(rng, merged, question, length, count, keep_order=True)
    chain = chains[0]
    steps = [f"VAR {chain[0]} = {target}."]
    steps += [f"VAR {chain[i]} = VAR {chain[i - 1]}, so {chain[i]} = {target}." for i in range(1, len(chain))]
    return dict(prompt=prompt, gold=gold, segments=segments, answers=list(chain), reasoning=" ".join(steps),
                answer=", ".join(chain), meta={"chains": chains, "values": values, "target_value": target})


def generate(
    task: str | TaskSpec,
    n: int = 4,
    *,
    length: int = 512,
    seed: int = 0,
    count_tokens: TokenCounter | None = None,
) -> list[TaskExample]:
    """Generate ``n`` examples of ``task`` whose user message is about ``length`` tokens.

    ``count_tokens`` measures a text in the evaluated model's tokens (e.g.
    ``lambda s: len(tok.encode(s, add_special_tokens=False))``); without it a 4-characters-per-token
    estimate is used. Deterministic in (task, n, length, seed, counter).
    """
    spec = parse_task(task) if isinstance(task, str) else task
    count = count_tokens or approx_tokens
    out: list[TaskExample] = []
    for i in range(n):
        rng = random.Random(f"{spec.name}/{seed}/{i}")
        made = (_make_vt if spec.family == "vt" else _make_niah)(spec, rng, length, count)
        out.append(
            TaskExample(
                task=spec.name,
                uid=f"{spec.name}/{seed}/{i}",
                prompt=made["prompt"],
                answers=made["answers"],
                gold_spans=made["gold"],
                segments=made["segments"],
                gold_reasoning=made["reasoning"],
                gold_answer=made["answer"],
                meta={**made["meta"], "length": length, "seed": seed},
            )
        )
    return out


def expand_tasks(names: Sequence[str]) -> list[str]:
    """Task names with ``all`` expanded to :data:`DEFAULT_TASKS`; each validated and normalised."""
    out: list[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if not part:
                continue
            for t in DEFAULT_TASKS if part.lower() in {"all", "ruler"} else [part]:
                canonical = parse_task(t).name
                if canonical not in out:
                    out.append(canonical)
    return out
