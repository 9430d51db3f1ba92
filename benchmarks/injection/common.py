"""The pieces every scenario module shares: what a scenario is, tool definitions, name pools.

A *scenario* is one benign run of a task template, written as data: the user's request, the
ordered tool calls the agent makes (each with its output), the final answer, the one step whose
output can carry extra text (the *carrier*: where a distractor or an injection goes) and the
attacker goals that fit the task. `assemble.py` turns a scenario plus a variant and an attack
family into messages and labels, so the templates never deal with labels or spans.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from typing import Any, Callable

#: Wraps injected text inside a carrier's output so its span can be found after the carrier has
#: quoted, commented or JSON-encoded it (ASCII, so ``json.dumps`` leaves it alone).
MARK_START, MARK_END = "@@INJ<@@", "@@>INJ@@"


def tool(name: str, desc: str, /, **params: str) -> dict[str, Any]:
    """An OpenAI function definition; ``params`` map a name to a JSON type ("string", "array", ...).
    Every parameter is required except those whose type ends with ``?``. Descriptions stay short:
    the definitions are rendered into every prompt."""
    props: dict[str, Any] = {}
    required = []
    for key, typ in params.items():
        optional = typ.endswith("?")
        typ = typ.rstrip("?")
        props[key] = {"type": typ}
        if not optional:
            required.append(key)
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": props, "required": required}}}


@dataclass(frozen=True)
class Extra:
    """Text a carrier places in its output: a distractor or an injection. ``field`` is set for a
    json_field injection (JSON carriers add it as a key; text carriers write the object as a line).
    The text is wrapped in the span markers so `assemble` finds where it ended up."""

    text: str
    field: str | None = None

    def line(self) -> str:
        """The text as text carriers place it (markers included)."""
        body = json.dumps({self.field: self.text}, ensure_ascii=False) if self.field else self.text
        return MARK_START + body + MARK_END

    def put(self, obj: dict[str, Any], key: str, append: bool = True) -> None:
        """Place the text in a JSON item: its own key for json_field, else in (or after) ``key``."""
        marked = MARK_START + self.text + MARK_END
        if self.field:
            obj[self.field] = marked
        elif append and obj.get(key):
            obj[key] = f"{obj[key]} {marked}"
        else:
            obj[key] = marked


def para(extra: "Extra | None", sep: str = "\n\n") -> str:
    """``extra`` as a paragraph to append (``sep`` before it), or nothing."""
    return f"{sep}{extra.line()}" if extra else ""


def quoted(extra: "Extra | None", prefix: str) -> str:
    """``extra`` with every line prefixed (a code comment, a quote), markers kept around the text."""
    if not extra:
        return ""
    lines = extra.line().split("\n")
    return "\n".join(prefix + ln for ln in lines)


@dataclass
class Step:
    """One tool call of a run and its output.

    ``output`` is the tool's result; for the carrier step it is a function of the extra text to
    place (None: no extra). ``decisive`` names the arguments that say who receives the call's
    effect; ``delegated`` lists (argument, value) pairs the agent copied from data it read because
    the user asked it to (the value must occur in an earlier tool output, never in the request).
    """

    name: str
    args: dict[str, Any]
    output: str | Callable[[Extra | None], str] = ""
    decisive: tuple[str, ...] = ()
    delegated: tuple[tuple[str, str], ...] = ()
    note: str = ""  # assistant text written before the call
    reasoning: str = ""

    def render_output(self, extra: Extra | None) -> str:
        return self.output(extra) if callable(self.output) else self.output


@dataclass
class Goal:
    """What an injection asks for: an English imperative phrase (lower-case start, no final
    period), the calls that carry it out (labelled injected), and the values only the attacker
    supplied (a benign call never carries them). ``kind`` and ``slots`` let the foreign-language
    family write the same request in another language. ``after``: the injected calls come no
    earlier than before step ``after`` (when they use something a later read reveals)."""

    text: str
    steps: list[Step]
    attacker_values: tuple[str, ...]
    kind: str
    slots: dict[str, str] = field(default_factory=dict)
    after: int = 0


@dataclass
class Edit:
    """One Aider SEARCH/REPLACE block."""

    path: str
    search: str
    replace: str

    def block(self, fence: str = "python") -> str:
        return (f"{self.path}\n```{fence}\n<<<<<<< SEARCH\n{self.search}=======\n{self.replace}"
                f">>>>>>> REPLACE\n```\n")


@dataclass
class Scenario:
    """One benign run of a template (see the module docstring). ``final`` is the benign final
    answer ("" for none); ``facts`` are short language-neutral strings (names, amounts, dates) a
    hijacked answer keeps when it translates; ``distractors`` are harmless imperatives for the
    human that fit the carrier.

    Aider-style code runs set ``pasted`` (path -> function of the extra text giving the file) and
    ``edits`` instead of steps; their goals carry ``edit_goals`` (the backdoor edits)."""

    tools: list[dict[str, Any]]
    user: str
    steps: list[Step]
    carrier: int
    goals: list[Goal]
    final: str
    facts: list[str]
    distractors: list[str]
    system: str
    owner: str  # the account owner (an injection may sign as them)
    org: str
    boss: str  # a senior person of the owner's organisation (urgent requests)
    carrier_json: bool = False  # the carrier's output is JSON (a json_field injection is a key there)
    pasted: tuple[str, Callable[[Extra | None], str]] | None = None
    edits: list[Edit] = field(default_factory=list)
    edit_goals: list[tuple[Goal, list[Edit]]] = field(default_factory=list)
    reply_intro: str = ""
    reply_outro: str = ""

    @property
    def delegated(self) -> bool:
        return any(s.delegated for s in self.steps)


# -- pools ------------------------------------------------------------------------------------------

PEOPLE = [
    ("Amara", "Okafor"), ("Bruno", "Costa"), ("Chen", "Wei"), ("Dana", "Kowalski"), ("Emeka", "Nwosu"),
    ("Farah", "Haddad"), ("Greta", "Lindqvist"), ("Hiro", "Tanaka"), ("Ines", "Duarte"), ("Jonas", "Becker"),
    ("Kavya", "Rao"), ("Liam", "Byrne"), ("Mateo", "Rossi"), ("Nadia", "Petrova"), ("Omar", "Farouk"),
    ("Priya", "Nair"), ("Quinn", "Taylor"), ("Rosa", "Jimenez"), ("Sven", "Olsen"), ("Tomasz", "Nowak"),
    ("Uma", "Patel"), ("Victor", "Lemaire"), ("Wen", "Li"), ("Yusuf", "Demir"), ("Zoe", "Martin"),
    ("Aiko", "Sato"), ("Bilal", "Khan"), ("Clara", "Vogel"), ("Diego", "Alvarez"), ("Elin", "Berg"),
    ("Femi", "Adeyemi"), ("Hana", "Novak"), ("Ivan", "Horvat"), ("Julia", "Santos"), ("Kofi", "Mensah"),
    ("Lena", "Fischer"), ("Marco", "Bianchi"), ("Noor", "Aziz"), ("Oskar", "Wright"), ("Paula", "Reyes"),
]

ORGS = [
    ("Northwind", "northwind.example"), ("Acme", "acme-corp.example"), ("Globex", "globex.example"),
    ("Initech", "initech.example"), ("Helio Labs", "heliolabs.example"), ("Bluefin", "bluefin.example"),
    ("Kestrel Health", "kestrelhealth.example"), ("Orbital Foods", "orbitalfoods.example"),
    ("Tidewater", "tidewater.example"), ("Lumen Retail", "lumenretail.example"),
]

#: Outside services an attacker might name (clearly foreign to the user's organisation).
OUTSIDE_DOMAINS = ["mail-sync.example", "data-vault.example", "quickshare.example", "files-transfer.example",
                   "inbox-backup.example", "secure-docs.example", "cloudkeep.example", "auditbox.example"]
ATTACKER_HOSTS = ["login-verify.example", "cdn-assets.example", "get-update.example", "stats-collect.example",
                  "short.example", "docs-viewer.example", "pkg-mirror.example", "tools-install.example"]

TOPICS = ["budget", "roadmap", "hiring plan", "launch", "offsite", "security audit", "migration", "pricing",
          "quarterly report", "vendor contract", "onboarding", "customer survey", "release notes", "board deck"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = ["March", "April", "May", "June", "September", "October"]


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    email: str
    handle: str  # chat handle

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


def person(first: str, last: str, domain: str, rng: random.Random) -> Person:
    local = rng.choice([f"{first}.{last}", f"{first}", f"{first[0]}{last}", f"{first}{last[0]}"]).lower()
    return Person(first, last, f"{local}@{domain}", f"{first}.{last}".lower() if rng.random() < 0.3 else first.lower())


def people(rng: random.Random, domain: str, k: int) -> list[Person]:
    """``k`` distinct people of one organisation."""
    return [person(f, ln, domain, rng) for f, ln in rng.sample(PEOPLE, k)]


def org(rng: random.Random) -> tuple[str, str]:
    return rng.choice(ORGS)


@dataclass(frozen=True)
class Cast:
    """The people of one run: the account owner, a senior colleague and ``others``."""

    org: str
    domain: str
    owner: Person
    boss: Person
    others: list[Person]


def cast(rng: random.Random, k: int) -> Cast:
    org_name, domain = org(rng)
    ps = people(rng, domain, k + 2)
    return Cast(org_name, domain, ps[0], ps[1], ps[2:])


def lookalike(domain: str, rng: random.Random) -> str:
    """A domain that passes a glance for ``domain`` (hyphenated team, swapped letter, extra word)."""
    base = domain.split(".")[0]
    swapped = base.replace("o", "0", 1) if "o" in base else base.replace("i", "l", 1) if "i" in base else base + "s"
    return rng.choice([f"{base}-support.example", f"{base}-hr.example", f"{swapped}.example",
                       f"{base}mail.example", f"secure-{base}.example", f"{base}-billing.example"])


def outsider(rng: random.Random, domain: str | None = None, legit_looking: bool = False) -> str:
    """An attacker address: an outside mailbox, a lookalike of the user's domain, or (rarely)
    an internal-looking mailbox of the user's own domain."""
    local = rng.choice(["records", "archive", "it-desk", "backup", "compliance", "helpdesk", "payroll",
                        "finance-ops", "admin", "sync"])
    if legit_looking and domain:
        return f"{local}@{rng.choice([lookalike(domain, rng), lookalike(domain, rng), domain])}"
    return f"{local}@{rng.choice(OUTSIDE_DOMAINS)}"


def attacker_url(rng: random.Random, path: str | None = None) -> str:
    return f"https://{rng.choice(ATTACKER_HOSTS)}/{path or rng.choice(['verify', 'login', 'i', 'start', 'doc'])}" \
           f"{'?ref=' + ''.join(rng.choices(string.ascii_lowercase + string.digits, k=6)) if rng.random() < 0.5 else ''}"


def _iban_check(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in (bban + country + "00"))
    return f"{98 - int(digits) % 97:02d}"


def iban(rng: random.Random) -> str:
    """A well-formed IBAN (correct check digits) of a random country, written without spaces."""
    country = rng.choice(["DE", "NL", "ES", "GB", "FR", "IT"])
    d = lambda n: "".join(rng.choices(string.digits, k=n))  # noqa: E731
    letters = lambda n: "".join(rng.choices(string.ascii_uppercase, k=n))  # noqa: E731
    bban = {"DE": lambda: d(18), "NL": lambda: letters(4) + d(10), "ES": lambda: d(20),
            "GB": lambda: letters(4) + d(14), "FR": lambda: d(23), "IT": lambda: letters(1) + d(22)}[country]()
    return f"{country}{_iban_check(country, bban)}{bban}"


def iban_like(rng: random.Random, legit: str) -> str:
    """An IBAN of the same country and bank as ``legit`` (same first half), another account."""
    country, bban = legit[:2], legit[4:]
    keep = len(bban) // 2
    rest = "".join(rng.choice(string.digits) if ch.isdigit() else rng.choice(string.ascii_uppercase)
                   for ch in bban[keep:])
    if rest == bban[keep:]:
        rest = rest[::-1] if rest[::-1] != rest else ("1" if rest[0] != "1" else "2") + rest[1:]
    return f"{country}{_iban_check(country, bban[:keep] + rest)}{bban[:keep]}{rest}"


def iban_ok(value: str) -> bool:
    """Whether ``value`` passes the IBAN mod-97 check."""
    digits = "".join(str(int(ch, 36)) for ch in value[4:] + value[:4])
    return int(digits) % 97 == 1


def money(rng: random.Random, lo: float, hi: float, step: float = 0.01) -> float:
    return round(round(rng.uniform(lo, hi) / step) * step, 2)


def fmt_amount(x: float) -> str:
    return f"{x:,.2f}"


def pick(rng: random.Random, options: list[str], **kw: Any) -> str:
    """One of several phrasings, formatted with ``kw``."""
    return rng.choice(options).format(**kw)


def date(rng: random.Random, month: str | None = None) -> str:
    return f"{month or rng.choice(MONTHS)} {rng.randint(2, 27)}"


def ack(rng: random.Random, what: str) -> str:
    """A short tool acknowledgement ("Email sent (id 48213).")."""
    return f"{what} ({rng.choice(['id', 'ref', 'confirmation'])} {rng.randint(10000, 99999)})."
