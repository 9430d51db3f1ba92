"""The store's errors: what a user can fix (a missing database, an unknown action...)."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store operation failed in a way the user can fix (missing database, unknown action...)."""


class NotFound(StoreError):
    """What was asked for is not in the database."""
