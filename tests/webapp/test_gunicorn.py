"""gunicorn.conf.py really serves the app: workers come up, /readyz turns green, metrics sum over workers."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_gunicorn_serves_with_the_config(model_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SECRET_KEY": "test", "MODEL_DIR": str(model_dir), "PORT": str(port),
           "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2",
           "DATABASE": str(tmp_path / "db.sqlite"), "CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "webapp:create_app()"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            try:
                status, _ = _get(port, "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        assert status == 200
        for _ in range(6):
            assert _get(port, "/healthz")[0] == 200
        status, body = _get(port, "/metrics")
        assert status == 200
        # Six /healthz calls, whichever worker answered them, are summed into one counter.
        assert b'roomfit_http_requests_total{endpoint="api.healthz",method="GET",status="200"} 6.0' in body
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    log = out.decode()
    assert "Booting worker" in log and '"GET /healthz HTTP/1.1" 200' in log  # access log on stdout
    assert "Traceback" not in log
