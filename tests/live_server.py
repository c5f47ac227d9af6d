"""A real `cityhub serve` process for tests that need one (browsers, real protocol clients, crash tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CITYHUB = Path(sys.executable).parent / "cityhub"
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process on ``database_url`` (no CITYHUB_* leaks in from the caller)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHUB_")}
    return env | {
        "CITYHUB_ENV": "test",
        "CITYHUB_DATABASE_URL": database_url,
        "CITYHUB_VAR_DIR": str(var_dir),
        "CITYHUB_LOG_LEVEL": "warning",
        **extra,
    }


@contextmanager
def live_server(env: dict[str, str], log_path: Path, *args: str) -> Iterator[str]:
    """`cityhub serve` with ``env``; yields its base URL once /readyz answers, stops it afterwards."""
    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(CITYHUB), "serve", "--port", str(port), *args], env=env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, server, log_path)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def wait_until_ready(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the server on {base_url} did not get ready (exit code {server.poll()}):\n{tail}")
