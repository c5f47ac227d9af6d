"""Time from `make demo` to a server answering /readyz with the small demo city, on SQLite.

Dependencies must already be installed (the figure excludes downloads). Prints one JSON document.
Usage: .venv/bin/python bench/demo_ready.py [--size small]
Target (issue #2): small demo city ready to serve in <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import ROOT, free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="small")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as var_dir:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHUB_")}
        env["CITYHUB_VAR_DIR"] = var_dir
        started = time.perf_counter()
        process = subprocess.Popen(
            ["make", "--no-print-directory", "demo", f"PORT={port}", f"SIZE={args.size}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        ready_after = None
        try:
            while time.perf_counter() - started < 300 and process.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        ready_after = time.perf_counter() - started
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
        finally:
            os.killpg(process.pid, 15)
            process.wait(timeout=30)
    print(
        json.dumps(
            {
                "benchmark": "demo_ready",
                "size": args.size,
                "seconds_to_ready": ready_after and round(ready_after, 2),
                "target_seconds": 60,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
