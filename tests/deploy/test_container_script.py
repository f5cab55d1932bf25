"""Fast checks of scripts/container_test.py's own logic (the container run itself is `make container-test`)."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.formparser import parse_form_data

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "container_test.py"


@pytest.fixture(scope="module")
def ct():
    spec = importlib.util.spec_from_file_location("container_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["container_test"] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("container_test", None)


def test_help_runs_without_podman() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--max-size-mb" in proc.stdout


def test_http_only_talks_to_loopback(ct) -> None:
    for url in ("http://10.0.0.1:8000/readyz", "http://example.com/", "http://localhost.evil:1/"):
        with pytest.raises(ValueError, match="127.0.0.1"):
            ct.http(url)


def test_multipart_body_is_what_flask_parses(ct) -> None:
    body, ctype = ct.multipart("image", "chair.jpg", b"\xff\xd8jpeg bytes", "image/jpeg")
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": ctype, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    _, _, files = parse_form_data(environ)
    upload = files["image"]
    assert upload.filename == "chair.jpg" and upload.mimetype == "image/jpeg"
    assert upload.read() == b"\xff\xd8jpeg bytes"


def test_report_flags_a_slow_start(ct) -> None:
    cfg = ct.TestConfig()
    res = ct.Results(size_mb=250, ready_s=cfg.target_ready_s + 1, model="m")
    assert "OVER TARGET" in ct.report(res, cfg)
    res.ready_s = 0.5
    assert "OVER TARGET" not in ct.report(res, cfg)
