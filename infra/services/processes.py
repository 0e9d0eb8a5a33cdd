"""What the private servers of infra/services have in common: free loopback ports, waiting for
a health URL, stopping a process."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


class ExitedEarly(Exception):
    """The server exited before it was ready (often: another process took its port meanwhile)."""


def is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_for_health(process: subprocess.Popen, url: str, log_path: Path, timeout: float,
                    interval: float = 0.05) -> None:
    """Returns once `url` answers 200; ExitedEarly if the process exits first."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an http_proxy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ExitedEarly(f"exited at start; see {log_path}")
        try:
            with direct.open(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(interval)
    raise TimeoutError(f"{url} not ready after {timeout} s; see {log_path}")


def stop(process: subprocess.Popen, timeout: float, *, kill: bool = False) -> None:
    """SIGTERM (SIGKILL with `kill`, a crash), then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
