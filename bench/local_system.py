"""Start `entrix local` as a user would, in its own process, for the benchmarks that need it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from entrix.local.endpoint import free_port

ROOT = Path(__file__).resolve().parent.parent
ENTRIX = Path(sys.executable).parent / "entrix"
STARTUP_LIMIT_SECONDS = 120


@dataclass(frozen=True)
class RunningSystem:
    api_url: str
    aws_endpoint: str
    aws_port: int
    startup_seconds: float

    def token(self) -> str:
        return subprocess.run(
            [str(ENTRIX), "token", "--aws-port", str(self.aws_port)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()


def _serving(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True  # any HTTP answer (401 without a token) means the API is up
    except OSError:
        return False
    return True


@contextlib.contextmanager
def running_system(schedule_seconds: float = 86_400) -> Iterator[RunningSystem]:
    """`entrix local` on free loopback ports; the startup time is from spawn to first answer."""
    port, aws_port = free_port(), free_port()
    command = [
        str(ENTRIX),
        "local",
        "--port",
        str(port),
        "--aws-port",
        str(aws_port),
        "--schedule-seconds",
        str(schedule_seconds),
    ]
    # stderr goes to a file, not to a pipe nobody reads while the system runs (a full pipe blocks).
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        api_url = f"http://127.0.0.1:{port}"
        try:
            while not _serving(f"{api_url}/orders"):
                if process.poll() is not None:
                    errors.seek(0)
                    raise RuntimeError(f"entrix local exited: {errors.read().decode()}")
                if time.perf_counter() - started > STARTUP_LIMIT_SECONDS:
                    raise RuntimeError("entrix local did not start serving in time")
                time.sleep(0.05)
            yield RunningSystem(
                api_url,
                f"http://127.0.0.1:{aws_port}",
                aws_port,
                time.perf_counter() - started,
            )
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
