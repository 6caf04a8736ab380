"""Deterministic ids: a natural key finds its aggregate without an index.

Every id is uuid5(FT_NAMESPACE, "<kind>:<key>:..."). These ids are stored in users' event logs,
so the text each kind hashes never changes (tests/unit/test_stable_ids.py pins one of each).
Batches take theirs from their record ids: `domain.batches.batch_id`.
"""

from __future__ import annotations

from uuid import UUID, uuid5

#: Namespace of every deterministic id in ft-lifecycle.
FT_NAMESPACE = UUID("6f1c1d3e-2a57-5b7e-9d0b-3c2f4e8a9b10")


def stable_id(kind: str, *keys: str) -> UUID:
    """The id of a `kind` of thing with these natural keys ("model", "support-bot"); a kind without
    keys names a singleton ("price-catalog")."""
    return uuid5(FT_NAMESPACE, ":".join((kind, *keys)))
