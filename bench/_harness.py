"""Shared benchmark plumbing: fresh databases, a real server in subprocesses, wrk runs parsed to numbers."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cityhub.domains import manifests
from cityhub.domains.identity import Grant, Principal
from cityhub.domains.identity.models import OrgUnit
from cityhub.domains.identity.service import apikeys, orgs
from cityhub.kernel.db import Database
from cityhub.migrations import upgrade_engine

ROOT = Path(__file__).resolve().parents[1]
CITYHUB = Path(sys.executable).parent / "cityhub"
POSTGRES_ADMIN_URL = os.environ.get(
    "CITYHUB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A migrated, empty database URL on the backend; removed afterwards."""
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="cityhub-bench-")
        url = f"sqlite:///{folder}/bench.db"
        _migrate(url)
        try:
            yield url
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"cityhub_bench_{os.getpid()}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    _migrate(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    database = Database.from_url(url)
    upgrade_engine(database.engine)
    database.dispose()


PASSED = ("CITYHUB_USE_POSTGIS",)


def server_env(url: str, var_dir: str, **extra: str) -> dict[str, str]:
    # The caller's CITYHUB_* settings are left out, but for the switches a run is compared by.
    env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHUB_") or key in PASSED}
    env |= {
        "CITYHUB_ENV": "test",
        "CITYHUB_DATABASE_URL": url,
        "CITYHUB_VAR_DIR": var_dir,
        "CITYHUB_JOBS__EMBEDDED_WORKER": "false",
        "CITYHUB_LOG_LEVEL": "warning",
    }
    return env | extra


@contextmanager
def running_server(env: dict[str, str], workers: int) -> Iterator[str]:
    """`cityhub serve --workers N` in a subprocess; its base URL once /readyz answers."""
    port = free_port()
    process = subprocess.Popen(
        [str(CITYHUB), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _yield_cpu_to_the_database(process.pid)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _yield_cpu_to_the_database(pid: int) -> None:
    """Give the app's scheduler autogroup a lower weight than PostgreSQL's (Linux, best effort).

    With kernel.sched_autogroup_enabled=1 the CPU is shared between sessions, not processes: two saturated
    app workers plus wrk in one session starve the PostgreSQL session, whose backends then wait 0.1-1.7 s
    for a CPU (measured). A server in its own session with autogroup nice 5 keeps PostgreSQL scheduled. On a
    real deployment the database has its own host or cores; here the three share two.
    """
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text("5")


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready in 60 s")


LATENCY_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    url: str,
    headers: dict[str, str],
    seconds: int,
    connections: int,
    threads: int = 1,
    script: Path | None = None,
) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from wrk --latency (``script``: a wrk Lua request script)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (make bench does it)")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for percentile in ("50", "90", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if match:
            result[f"p{percentile}_ms"] = round(float(match.group(1)) * LATENCY_UNITS[match.group(2)], 3)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result["non_2xx"] = float(non_2xx.group(1)) if non_2xx else 0.0
    errors = re.search(r"Socket errors:.*", output)
    result["socket_errors"] = (
        0.0 if errors is None else float(sum(int(n) for n in re.findall(r"\d+", errors.group(0))))
    )
    return result


def city_with_api_key(session: Session, permissions: list[str]) -> tuple[OrgUnit, str]:
    """A city (the root org unit) and an API key holding ``permissions`` over it; the key's secret."""
    manifests()
    city = orgs.create_unit(session, orgs.OrgUnitInput(kind="city", code="BENCH", name="基准市"))
    grant = Grant("operator", city.id, city.path, None, frozenset({*permissions, "identity.apikeys.manage"}))
    creator = Principal("system", 0, "bench", None, (grant,))
    _key, secret = apikeys.create_key(session, creator, name="bench", permissions=permissions, org_unit=city)
    return city, secret


def copy_into(database: Database, table: str, columns: str, text: str) -> None:
    """PostgreSQL ``COPY table (columns) FROM STDIN`` of tab-separated ``text``, committed."""
    raw = database.engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        with cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            copy.write(text)
        raw.commit()
    finally:
        raw.close()
