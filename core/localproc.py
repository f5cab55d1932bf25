"""Local helper processes (a registry, moto_server, gunicorn) for the deployment checks, their tests and the API
benchmark: a free port on 127.0.0.1 and a bounded stop."""

from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a process and wait for it; kill it if it ignores SIGTERM for `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
