"""The audit chain: links, verification, every kind of tampering, rollback and concurrent appenders."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import func, select, text

from cityhub.kernel import audit
from cityhub.kernel.db import Database
from cityhub.kernel.models import AuditHead, AuditRecord


def append(database: Database, count: int) -> None:
    for index in range(count):
        with database.unit_of_work() as session:
            audit.record(
                session,
                actor=f"account:{index}",
                action="health.record.read",
                object_type="health_record",
                object_id=100 + index,
                purpose="treatment",
                details={"fields": ["diagnosis"], "index": index, "名字": "张三"},
            )


def fail_after_recording(database: Database) -> None:
    with database.unit_of_work() as session:
        audit.record(session, actor="system", action="x", object_type="y", object_id=1)
        raise RuntimeError("the change failed")


def verify(database: Database) -> audit.VerifyResult:
    with database.reading() as session:
        return audit.verify(session)


def tamper(database: Database, *statements: str) -> None:
    with database.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def test_empty_chain_is_intact(database: Database) -> None:
    assert verify(database) == audit.VerifyResult(ok=True, checked=0)


def test_records_are_linked_and_anchored(database: Database) -> None:
    append(database, 3)
    with database.reading() as session:
        rows = session.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        head = session.get(AuditHead, 1)
    assert [row.id for row in rows] == [1, 2, 3]
    assert rows[0].prev_hash == audit.GENESIS_HASH
    assert [row.prev_hash for row in rows[1:]] == [row.hash for row in rows[:-1]]
    assert rows[2].details == {"fields": ["diagnosis"], "index": 2, "名字": "张三"}
    assert rows[2].object_id == "102"
    assert head is not None
    assert (head.last_id, head.last_hash) == (3, rows[2].hash)
    assert verify(database) == audit.VerifyResult(ok=True, checked=3, head_hash=rows[2].hash)


EDIT = "UPDATE kernel_audit_record SET"
DELETE = "DELETE FROM kernel_audit_record WHERE"
HEAD = "UPDATE kernel_audit_head SET"
FLIP_FIRST_HEX_DIGIT = "CASE WHEN substr(hash, 1, 1) = 'f' THEN 'e' ELSE 'f' END || substr(hash, 2)"


@pytest.mark.parametrize(
    ("statements", "broken_id", "reason"),
    [
        pytest.param([f"{EDIT} actor = 'account:999' WHERE id = 2"], 2, "edited", id="field"),
        pytest.param([f"{EDIT} purpose = NULL WHERE id = 3"], 3, "edited", id="nulled-field"),
        pytest.param([f"{EDIT} details = '{{\"fields\": []}}' WHERE id = 1"], 1, "edited", id="details"),
        pytest.param([f"{EDIT} hash = {FLIP_FIRST_HEX_DIGIT} WHERE id = 2"], 2, "edited", id="hash"),
        pytest.param([f"{DELETE} id = 2"], 3, "record #2 is missing", id="deleted-middle"),
        pytest.param(
            [f"{DELETE} id >= 4"], 4, "records #4..#5 are missing at the end", id="deleted-last-two"
        ),
        pytest.param([f"{DELETE} id = 5"], 5, "at the end", id="deleted-last"),
        pytest.param(
            [
                f"{DELETE} id = 2",
                f"{EDIT} id = id - 1 WHERE id > 2",
                f"{HEAD} last_id = 4",
            ],
            2,
            "prev_hash",
            id="deleted-and-renumbered",
        ),
        pytest.param(["DELETE FROM kernel_audit_head"], 1, "head anchor", id="head-removed"),
    ],
)
def test_tampering_is_detected(
    database: Database, statements: list[str], broken_id: int, reason: str
) -> None:
    append(database, 5)
    tamper(database, *statements)
    result = verify(database)
    assert not result.ok
    assert result.broken_id == broken_id
    assert reason in str(result.reason)


def test_rewritten_record_with_fresh_hash_breaks_the_next_link(database: Database) -> None:
    append(database, 4)
    forged = audit.compute_hash(
        id=2,
        actor="account:999",
        action="health.record.read",
        object_type="health_record",
        object_id="101",
        purpose="treatment",
        details={"fields": ["diagnosis"], "index": 1, "名字": "张三"},
        occurred_at=_occurred_at(database, 2),
        prev_hash=_hash(database, 1),
    )
    tamper(database, f"UPDATE kernel_audit_record SET actor = 'account:999', hash = '{forged}' WHERE id = 2")
    result = verify(database)
    assert (result.ok, result.broken_id) == (False, 3)
    assert "prev_hash" in str(result.reason)


def test_rewritten_last_record_is_caught_by_the_head(database: Database) -> None:
    append(database, 3)
    forged = audit.compute_hash(
        id=3,
        actor="system",
        action="health.record.read",
        object_type="health_record",
        object_id="102",
        purpose="treatment",
        details={"fields": ["diagnosis"], "index": 2, "名字": "张三"},
        occurred_at=_occurred_at(database, 3),
        prev_hash=_hash(database, 2),
    )
    tamper(database, f"UPDATE kernel_audit_record SET actor = 'system', hash = '{forged}' WHERE id = 3")
    result = verify(database)
    assert (result.ok, result.broken_id) == (False, 3)
    assert "head" in str(result.reason)


def test_record_rolls_back_with_the_caller(database: Database) -> None:
    append(database, 1)
    with pytest.raises(RuntimeError, match="the change failed"):
        fail_after_recording(database)
    append(database, 1)
    with database.reading() as session:
        assert session.scalars(select(AuditRecord.id)).all() == [1, 2]
    assert verify(database).ok


def test_details_must_be_json(database: Database) -> None:
    with database.unit_of_work() as session:
        with pytest.raises(ValueError, match="JSON"):
            audit.record(
                session,
                actor="system",
                action="x",
                object_type="y",
                object_id=1,
                details={"ratio": float("nan")},
            )
        with pytest.raises(TypeError):
            audit.record(
                session, actor="system", action="x", object_type="y", object_id=1, details={"when": object()}
            )


def test_concurrent_appenders_never_fork_the_chain(database: Database) -> None:
    threads = [threading.Thread(target=append, args=(database, 25)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 150
    assert verify(database) == audit.VerifyResult(ok=True, checked=150, head_hash=verify(database).head_hash)


def _occurred_at(database: Database, record_id: int) -> datetime:
    with database.reading() as session:
        return session.execute(
            select(AuditRecord.occurred_at).where(AuditRecord.id == record_id)
        ).scalar_one()


def _hash(database: Database, record_id: int) -> str:
    with database.reading() as session:
        return str(session.scalar(select(AuditRecord.hash).where(AuditRecord.id == record_id)))


def test_unreadable_edits_are_reported_not_crashed(tmp_path) -> None:
    """SQLite stores whatever text an attacker writes; verify must name the record, not raise."""
    from sqlalchemy import text as sql

    from cityhub.kernel import audit
    from cityhub.kernel.db import Database
    from cityhub.migrations import upgrade_engine

    database = Database.from_url(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade_engine(database.engine)
    with database.unit_of_work() as session:
        for index in range(3):
            audit.record(session, actor="system", action="test", object_type="thing", object_id=str(index))
    for column, value in (("occurred_at", "2024-13-45"), ("details", "{not json")):
        with database.engine.begin() as connection:
            connection.execute(
                sql(f"UPDATE kernel_audit_record SET {column} = :v WHERE id = 2"), {"v": value}
            )
        with database.reading() as session:
            result = audit.verify(session)
        assert not result.ok and result.broken_id == 2 and "cannot be read" in (result.reason or "")
    database.dispose()
