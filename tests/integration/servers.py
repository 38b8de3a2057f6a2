"""Real server processes for integration tests: started on 127.0.0.1, always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(
    command: list[str],
    *,
    ready_url: str,
    log_path: Path,
    start_seconds: float,
    env: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Run ``command`` in its own process group until ``ready_url`` answers 200; kill after."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            env=None if env is None else dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + start_seconds
            while not _answers(ready_url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{command[0]} did not start:\n{log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.5)
            yield
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def churnml_serve(env: Mapping[str, str], log_path: Path, *, start_seconds: float) -> Iterator[str]:
    """The real ``churnml serve`` on a free port of 127.0.0.1; yields its base URL."""
    churnml = Path(sys.executable).with_name("churnml")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        [str(churnml), "serve", "--port", str(port), "--host", "127.0.0.1"],
        ready_url=f"{url}/readyz",
        log_path=log_path,
        start_seconds=start_seconds,
        env=env,
    ):
        yield url
