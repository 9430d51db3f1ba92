"""Segments: cut a trajectory into scored units and place them on the replay model's tokens.

    from auditor.segments import segment_trajectory, render_trajectory
    segments = segment_trajectory(traj)                 # kinds, provenance, labels
    rendered = render_trajectory(traj, tokenizer, segments, max_tokens=4096)
    rendered.segments[0].token_start, rendered.unplaced, rendered.dropped
"""

from auditor.segments.render import (
    DEFAULT_MAX_TOKENS,
    ContextTooLong,
    RenderedTrajectory,
    TemplateCaps,
    default_max_tokens,
    render_trajectory,
    template_caps,
)
from auditor.segments.segment import LONG_OUTPUT, LONG_PARAGRAPH, is_constraint, segment_trajectory

__all__ = [
    "segment_trajectory",
    "is_constraint",
    "render_trajectory",
    "RenderedTrajectory",
    "TemplateCaps",
    "template_caps",
    "default_max_tokens",
    "ContextTooLong",
    "DEFAULT_MAX_TOKENS",
    "LONG_OUTPUT",
    "LONG_PARAGRAPH",
]
