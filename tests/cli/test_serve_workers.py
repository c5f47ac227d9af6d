"""`cityhub serve --workers 2`: two workers on one port, a dead worker is replaced, SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cityhub.kernel.settings import Settings

CITYHUB = Path(sys.executable).parent / "cityhub"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _web_workers(parent: int) -> set[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    workers = set()
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except FileNotFoundError:
            continue
        if b"multiprocessing.spawn" in command and b"resource_tracker" not in command:
            workers.add(int(child))
    return workers


def _wait_until(condition, seconds: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT") or not Path("/proc").is_dir(), reason="Linux only")
def test_supervised_workers_share_the_port_restart_and_stop(settings: Settings) -> None:
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHUB_")}
    env |= {
        "CITYHUB_ENV": "test",
        "CITYHUB_DATABASE_URL": settings.resolved_database_url,
        "CITYHUB_VAR_DIR": str(settings.var_dir),
        "CITYHUB_JOBS__EMBEDDED_WORKER": "false",
        "CITYHUB_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen([str(CITYHUB), "serve", "--port", str(port), "--workers", "2"], env=env)
    base = f"http://127.0.0.1:{port}"
    workers: set[int] = set()
    try:
        assert _wait_until(lambda: _ready(base) and len(_web_workers(server.pid)) == 2)
        first = _web_workers(server.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        assert _wait_until(lambda: len(_web_workers(server.pid) - {victim}) == 2), "a dead worker is replaced"
        assert _wait_until(lambda: _ready(base))
        workers = _web_workers(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    assert code == 0
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "workers outlived the supervisor"
