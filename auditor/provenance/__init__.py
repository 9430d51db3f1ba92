"""Value provenance: where each argument value of an action literally occurs in what the model read.

Attribution says which segments drove an action; provenance says where the action's argument
values *are* in the context: the user request, the system prompt, which tool output paragraph,
which tool definition, the model's own earlier text, or nowhere. Together they tell "the address
came from the injected paragraph that drove the call" from "the user typed it".

    index = ProvenanceIndex(segments)            # once per trajectory
    for p in provenance_of(action, index):       # per argument, searched before the action
        print(describe(p))                       # to = archive@exfil.example appears only in
                                                 #   read_inbox#call_1 ¶2 (tool output)

Modules: `text` (normalisation with offsets), `units` (emails, URLs, ids, numbers, paths, ...),
`locate` (the index and the search), `summary` (per-argument class and the one-line sentence).
This package sits right above the trajectory model and imports nothing else from auditor.
"""

from auditor.provenance.locate import Occurrence, ProvenanceIndex, SourceClass, Strength, locate, place
from auditor.provenance.summary import (ArgumentProvenance, Match, argument_values, describe, provenance_of,
                                        quote, source_class, summarize)
from auditor.provenance.text import Normalized, normalize
from auditor.provenance.units import Unit, UnitKind, units, value_text

__all__ = [
    "ArgumentProvenance", "Match", "Normalized", "Occurrence", "ProvenanceIndex", "SourceClass", "Strength",
    "Unit", "UnitKind", "argument_values", "describe", "locate", "normalize", "place", "provenance_of",
    "quote", "source_class", "summarize", "units", "value_text",
]
