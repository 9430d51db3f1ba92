"""Evaluation: are the attributions right, not only fast?

    from auditor.evaluation import run_eval, generate, recovery_rate, deletion_test

- :mod:`~auditor.evaluation.tasks`: offline RULER-style generators (needle-in-a-haystack
  multi-query / multi-value, variable tracking with hops and chains) with gold character spans;
- :mod:`~auditor.evaluation.traces`: the model's own short chain of thought, kept only when the
  answer is right, or the generator's gold trace;
- :mod:`~auditor.evaluation.metrics`: recovery rate, RISE and MAS deletion (algorithm.md §8);
- :mod:`~auditor.evaluation.runner`: char spans → tokens, every method, every metric, the report;
- :mod:`~auditor.evaluation.plots`: deletion curves and recovery by hops as PNG.

``audit eval`` is the command-line face of :func:`run_eval`.
"""

from auditor.evaluation.metrics import (
    DeletionResult,
    deletion_test,
    mas_auc,
    mass_density,
    model_logprob_fn,
    recovery_rate,
    rise_auc,
)
from auditor.evaluation.runner import (
    DEFAULT_HOPS,
    DEFAULT_METHODS,
    EvalRecord,
    EvalReport,
    MethodSpec,
    Prepared,
    SummaryRow,
    evaluate_traces,
    method_specs,
    prepare,
    run_eval,
)
from auditor.evaluation.tasks import DEFAULT_TASKS, TaskExample, TaskSpec, expand_tasks, generate, parse_task
from auditor.evaluation.traces import Trace, collect_traces, gold_trace, model_trace

__all__ = [
    "run_eval", "EvalReport", "EvalRecord", "SummaryRow", "MethodSpec", "method_specs", "evaluate_traces",
    "prepare", "Prepared", "DEFAULT_METHODS", "DEFAULT_HOPS",
    "generate", "parse_task", "expand_tasks", "TaskExample", "TaskSpec", "DEFAULT_TASKS",
    "Trace", "collect_traces", "gold_trace", "model_trace",
    "recovery_rate", "rise_auc", "mas_auc", "mass_density", "deletion_test", "DeletionResult", "model_logprob_fn",
]
