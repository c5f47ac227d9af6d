"""`cityhub audit verify` and `cityhub worker --once` against the test database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import typer
from sqlalchemy import select, text
from typer.testing import CliRunner

from cityhub.cli.ops import register
from cityhub.kernel import audit, jobs
from cityhub.kernel.db import Database
from cityhub.kernel.models import Job
from cityhub.kernel.settings import Settings


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def append(database: Database, count: int) -> None:
    with database.unit_of_work() as session:
        for index in range(count):
            audit.record(
                session,
                actor="apikey:3",
                action="exchange.dataset.read",
                object_type="dataset",
                object_id=index,
                purpose="open data",
            )


def test_audit_verify_reports_an_intact_chain(database: Database, settings: Settings) -> None:
    append(database, 3)
    result = CliRunner().invoke(cli(), ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "chain intact: 3 records" in result.output


def test_audit_verify_names_the_first_broken_record(database: Database, settings: Settings) -> None:
    append(database, 4)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE kernel_audit_record SET purpose = 'curiosity' WHERE id = 2"))
        connection.execute(text("DELETE FROM kernel_audit_record WHERE id = 4"))
    result = CliRunner().invoke(cli(), ["audit", "verify"])
    assert result.exit_code == 1
    assert "chain broken at record #2" in result.output
    assert "edited" in result.output


def test_worker_once_drains_due_jobs_and_exits(database: Database, settings: Settings) -> None:
    with database.unit_of_work() as session:
        jobs.enqueue(session, "kernel.jobs.purge", {})
    result = CliRunner().invoke(cli(), ["worker", "--once", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert re.search(r"ran \d+ job\(s\)", result.output)
    with database.reading() as session:
        purges = session.scalars(select(Job.status).where(Job.name == "kernel.jobs.purge")).all()
    assert purges == [jobs.DONE, jobs.DONE]  # the queued one and this period's scheduled one


def test_worker_process_stops_cleanly_on_sigterm(database: Database, settings: Settings) -> None:
    cityhub = Path(sys.executable).parent / "cityhub"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    process = subprocess.Popen(
        [str(cityhub), "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # wait until it serves
            if "thread(s) on" in line:
                break
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "SIGTERM" in output
