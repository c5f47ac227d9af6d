"""The audit chain: append-only records, each carrying the hash of the one before it.

Every sensitive read and privileged write calls :func:`record` inside its own transaction, so the record
commits (or rolls back) together with what it describes. :func:`verify` (``cityhub audit verify``) walks
the chain and names the first record that was edited, removed or forged.

Guarantees:

- the chain never forks: appenders are serialised (``pg_advisory_xact_lock`` on PostgreSQL, the
  ``BEGIN IMMEDIATE`` write transaction on SQLite), and ids are head + 1, so even an appender that skipped
  the lock would collide on the primary key rather than branch;
- editing any field or hash, deleting a record in the middle, and deleting the newest records (the head
  anchor remembers the last id and hash) are all detected;
- someone able to rewrite the whole tail *and* the head can only be caught against a copy of the head
  hash kept elsewhere; ``verify`` reports that hash so operators can record it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from cityhub.kernel.db import is_postgres, utcnow
from cityhub.kernel.models import AuditHead, AuditRecord

GENESIS_HASH = "0" * 64
HEAD_ID = 1
# Any fixed 64-bit key works; this one spells "cityhub" followed by 0x01 (the audit chain).
ADVISORY_LOCK_KEY = 0x6369747968756201
VERIFY_BATCH = 1000
HASHED_COLUMNS = ("id", "actor", "action", "object_type", "object_id", "purpose", "details", "occurred_at")


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_id: int | None = None
    reason: str | None = None
    head_hash: str | None = None


def canonical_json(value: Any) -> str:
    """The one JSON spelling that is hashed: sorted keys, no spaces, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def compute_hash(
    *,
    id: int,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    purpose: str | None,
    details: Mapping[str, Any],
    occurred_at: datetime,
    prev_hash: str,
) -> str:
    fields = {
        "id": id,
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "purpose": purpose,
        "details": details,
        "occurred_at": occurred_at.isoformat(timespec="microseconds"),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One record to append: who did what to which object, and why."""

    actor: str
    action: str
    object_type: str
    object_id: str | int
    purpose: str | None = None
    details: Mapping[str, Any] | None = None


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    purpose: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Append one record in the caller's transaction; its id.

    ``actor`` is ``"account:<id>"``, ``"apikey:<id>"`` or ``"system"``; ``details`` must be JSON (it is
    stored in its canonical form, which is what the hash covers).
    """
    return record_many(session, [Entry(actor, action, object_type, object_id, purpose, details)])[0]


def record_many(session: Session, entries: Sequence[Entry]) -> list[int]:
    """Append several records in the caller's transaction, in order, taking the chain's lock and moving its
    head once (a batch of a thousand changes costs one lock, not a thousand); their ids."""
    if not entries:
        return []
    _lock_chain(session)
    head = session.execute(
        select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == HEAD_ID)
    ).one_or_none()
    last_id, last_hash = (head.last_id, head.last_hash) if head else (0, GENESIS_HASH)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        values: dict[str, Any] = {
            "id": last_id + 1,
            "actor": entry.actor,
            "action": entry.action,
            "object_type": entry.object_type,
            "object_id": str(entry.object_id),
            "purpose": entry.purpose,
            "details": json.loads(canonical_json(dict(entry.details or {}))),
            "occurred_at": utcnow(),
            "prev_hash": last_hash,
        }
        values["hash"] = compute_hash(**values)
        rows.append(values)
        last_id, last_hash = values["id"], values["hash"]
    session.execute(insert(AuditRecord), rows)
    _move_head(session, exists=head is not None, last_id=last_id, last_hash=last_hash)
    return [row["id"] for row in rows]


def _lock_chain(session: Session) -> None:
    """Serialise appenders across processes; released when the caller's transaction ends."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


def _move_head(session: Session, *, exists: bool, last_id: int, last_hash: str) -> None:
    if exists:
        session.execute(
            update(AuditHead).where(AuditHead.id == HEAD_ID).values(last_id=last_id, last_hash=last_hash)
        )
    else:
        session.execute(insert(AuditHead).values(id=HEAD_ID, last_id=last_id, last_hash=last_hash))


def verify(session: Session) -> VerifyResult:
    """Walk the chain in id order, streaming, and report the first broken link.

    The head is read first; records appended while the walk runs are chain-checked but not required,
    so verifying a live system gives no false alarm.
    """
    head = session.execute(select(AuditHead.last_id, AuditHead.last_hash)).one_or_none()
    # Plain rows, not ORM objects: nothing accumulates in (or is served stale from) the identity map.
    rows = session.execute(
        select(AuditRecord.__table__).order_by(AuditRecord.id).execution_options(yield_per=VERIFY_BATCH)
    )
    expected_id, prev_hash, checked = 1, GENESIS_HASH, 0
    iterator = iter(rows)
    while True:
        try:
            row = next(iterator)
        except StopIteration:
            break
        except (ValueError, TypeError):
            # An edit wrote a value the column type cannot read back (SQLite keeps any text); rows are
            # decoded a batch at a time, so find the culprit one by one.
            return _walk_one_by_one(session, head, expected_id, prev_hash, checked)
        problem = _check_link(row, expected_id, prev_hash, head)
        if problem:
            return VerifyResult(False, checked, row.id, problem)
        expected_id, prev_hash, checked = row.id + 1, row.hash, checked + 1
    return _check_end(checked, expected_id - 1, head)


def _walk_one_by_one(
    session: Session, head: Any, expected_id: int, prev_hash: str, checked: int
) -> VerifyResult:
    """The slow path after a batch failed to decode: row by row, still reporting the first broken link."""
    columns = select(AuditRecord.__table__)
    next_id = _id_from(session, expected_id)
    while next_id is not None:
        try:
            row = session.execute(columns.where(AuditRecord.id == next_id)).one()
        except (ValueError, TypeError) as exc:
            return VerifyResult(False, checked, next_id, f"the record cannot be read (edited): {exc}")
        problem = _check_link(row, expected_id, prev_hash, head)
        if problem:
            return VerifyResult(False, checked, row.id, problem)
        expected_id, prev_hash, checked = row.id + 1, row.hash, checked + 1
        next_id = _id_from(session, expected_id)
    return _check_end(checked, expected_id - 1, head)


def _id_from(session: Session, first: int) -> int | None:
    return session.scalar(select(AuditRecord.id).where(AuditRecord.id >= first).order_by(AuditRecord.id))


def _check_link(row: Any, expected_id: int, prev_hash: str, head: Any) -> str | None:
    if head is None:
        return "the head anchor is missing (records exist but kernel_audit_head was removed)"
    if row.id != expected_id:
        return f"{_id_range(expected_id, row.id - 1)} missing before this one"
    if row.prev_hash != prev_hash:
        return f"prev_hash does not match the hash of record #{expected_id - 1}"
    if _rehash(row) != row.hash:
        return "the record's content does not match its hash (edited)"
    if row.id == head.last_id and row.hash != head.last_hash:
        return "the record's hash differs from the one anchored in the head"
    return None


def _rehash(row: Any) -> str | None:
    """The hash the row should carry, or None when an edit left it unhashable (e.g. a NULL time)."""
    fields = {column: getattr(row, column) for column in HASHED_COLUMNS}
    try:
        return compute_hash(**fields, prev_hash=row.prev_hash)
    except (TypeError, ValueError, AttributeError):
        return None


def _check_end(checked: int, last_id: int, head: Any) -> VerifyResult:
    if head is not None and last_id < head.last_id:
        return VerifyResult(
            False,
            checked,
            last_id + 1,
            f"{_id_range(last_id + 1, head.last_id)} missing at the end of the chain",
        )
    return VerifyResult(True, checked, head_hash=head.last_hash if head else None)


def _id_range(first: int, last: int) -> str:
    return f"record #{first} is" if first == last else f"records #{first}..#{last} are"
