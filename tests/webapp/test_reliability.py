"""Reliability under hostile clients and load: a real gunicorn (gunicorn.conf.py, the RoomFit worker) on 127.0.0.1
for the protocol cases and slow clients; the app for load shedding, capped output and error pages."""
from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from core.localproc import free_port, stop
from webapp.shedding import WorkGate

ROOT = Path(__file__).resolve().parents[2]
READ_TIMEOUT = 2.0


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def _json_error(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), raw[:300]
    return status, json.loads(body)


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """gunicorn as `make run` starts it (2 workers), with a short request read timeout."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = {**os.environ, "SECRET_KEY": "test", "MODEL_DIR": str(model_dir), "PORT": str(port), "HOST": "127.0.0.1",
           "WEB_CONCURRENCY": "2", "DATABASE": str(tmp / "db.sqlite"), "CACHE_DIR": str(tmp / "cache"),
           "REQUEST_READ_TIMEOUT": str(READ_TIMEOUT), "LOG_LEVEL": "warning"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp / "log.txt", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py",
                             "webapp:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        yield port
    finally:
        stop(proc)
        log.close()
    text = (tmp / "log.txt").read_text()
    assert "Traceback" not in text, text[-3000:]


@pytest.mark.parametrize("name, chunks", [("letters", b"zz"), ("negative", b"-5")])
def test_a_malformed_chunked_body_is_a_json_400(server, name, chunks):
    raw = _raw(server, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"\r\nabc\r\n0\r\n\r\n")
    status, body = _json_error(raw)
    assert status == 400 and body["error"]["code"] == "bad_request"


@pytest.mark.parametrize("request_bytes, status, code", [
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET /api/products HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "bad_request"),
])
def test_gunicorns_own_errors_are_json(server, request_bytes, status, code):
    got, body = _json_error(_raw(server, request_bytes))
    assert (got, body["error"]["code"], body["success"]) == (status, code, False)


@pytest.mark.parametrize("host", [b"a..b", b"a" * 64 + b".example"])
def test_a_host_idna_cannot_encode_is_a_400_page_not_a_500(server, host):
    raw = _raw(server, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400"), raw[:200]
    status, body = _json_error(_raw(server, b"GET /api/products HTTP/1.1\r\nHost: " + host
                                    + b"\r\nConnection: close\r\n\r\n"))
    assert status == 400 and body["error"]["code"] == "bad_request"


def test_redirects_do_not_echo_the_host_header(server):
    raw = _raw(server, b"GET //api//products?q=a HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 308")
    assert b"\r\nLocation: /api/products?q=a\r\n" in raw, raw[:400]


def test_slow_clients_hold_no_thread_and_get_a_408(server, square_photo):
    slow = []
    try:
        for _ in range(64):
            s = socket.create_connection(("127.0.0.1", server), timeout=10)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                      b"Content-Length: 100000\r\n\r\nab")
            slow.append(s)
        time.sleep(0.2)
        conn = http.client.HTTPConnection("127.0.0.1", server, timeout=READ_TIMEOUT / 2)
        for _ in range(5):  # answered well before any slow client times out: no thread waits on their bodies
            conn.request("GET", "/healthz")
            assert conn.getresponse().read() and True
        body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n" + square_photo()
                + b"\r\n--b--\r\n")
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["success"]
        status, err = _json_error(slow[0].recv(4096) + b"")  # waits for the read timeout
        assert status == 408 and err["error"]["code"] == "request_timeout"
    finally:
        for s in slow:
            s.close()


def test_a_request_whose_body_arrives_in_pieces_is_served(server, square_photo):
    body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n" + square_photo()
            + b"\r\n--b--\r\n")
    head = (f"POST /predict?format=mask HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server), timeout=5) as s:
        s.sendall(head)
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")  # sent by the worker before any thread is involved
        for i in range(0, len(body), 700):
            s.sendall(body[i:i + 700])
            time.sleep(0.01)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert b"HTTP/1.1 200 OK" in out and b"image/png" in out


# ---- load shedding (the app's WorkGate) ----

def test_the_gate_refuses_at_once_when_the_expected_wait_is_past_the_deadline():
    gate = WorkGate(running=1, max_inflight=10, deadline=0.5, large_pixels=100, large_slots=1, large_wait=0.1)
    for _ in range(3):  # the service time learnt: 0.2 s a request
        with gate.admit(time.monotonic()) as ticket:
            ticket.start(10)
            ticket.started_at -= 0.2
    with gate.admit(time.monotonic()), gate.admit(time.monotonic()), gate.admit(time.monotonic()):
        t0 = time.monotonic()
        with pytest.raises(Exception) as late:  # three ahead at 0.2 s each: it would start after 0.6 s
            with gate.admit(time.monotonic()):
                pass
        assert late.value.code == "overloaded" and time.monotonic() - t0 < 0.05


def test_the_gate_refuses_at_once_when_full_and_frees_its_slots():
    shed = []
    gate = WorkGate(running=1, max_inflight=2, deadline=0.2, large_pixels=100, large_slots=1, large_wait=0.1,
                    on_shed=shed.append)
    with gate.admit(time.monotonic()) as first, gate.admit(time.monotonic()) as second:
        first.start(10)
        t0 = time.monotonic()
        with pytest.raises(Exception) as full:
            with gate.admit(time.monotonic()):
                pass
        assert time.monotonic() - t0 < 0.05
        assert full.value.status == 503 and full.value.code == "overloaded" and full.value.headers["Retry-After"]
        with pytest.raises(Exception) as late:  # the model slot stays taken: dropped at the deadline, not queued
            second.start(10)
        assert late.value.status == 503
    assert shed == ["full", "deadline"] and gate.inflight == 0
    with gate.admit(time.monotonic()) as ticket:
        ticket.start(1000)  # large: takes the large-image slot too
        assert ticket.large and ticket.running


def test_a_request_that_waited_past_the_deadline_is_dropped_before_the_model(make_app, square_photo):
    app = make_app(SHED_DEADLINE_SECONDS=0.5)
    client = app.test_client()
    old = time.monotonic() - 2  # arrived two seconds ago (as the worker stamps it)
    resp = client.post("/predict", data={"image": (io.BytesIO(square_photo()), "a.jpg")},
                       content_type="multipart/form-data", environ_base={"roomfit.arrived_at": old})
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "overloaded"
    assert resp.headers["Retry-After"] == "1"
    metrics = client.get("/metrics").get_data(as_text=True)
    # Refused at admission: it could not start in time whatever the queue (no model work, no wait).
    assert 'roomfit_shed_total{reason="late"} 1.0' in metrics


def test_concurrent_requests_over_the_limit_are_shed(make_app):
    app = make_app(SHED_MAX_INFLIGHT=1, MODEL_INTERPRETERS=1)
    big = io.BytesIO()
    Image.new("RGB", (3000, 2000), (200, 200, 200)).save(big, "PNG")  # a few hundred ms of decoding
    results: list[int] = []

    def post() -> None:
        resp = app.test_client().post("/predict", data={"image": (io.BytesIO(big.getvalue()), "a.png")},
                                      content_type="multipart/form-data")
        results.append(resp.status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[0] == 200 and 503 in results, results


# ---- huge images ----

def test_uploads_over_the_output_cap_are_answered_reduced(make_app):
    client = make_app(MAX_OUTPUT_PIXELS=1_000_000).test_client()
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        img = Image.new("RGB", (3000, 2000), (255, 255, 255))
        img.paste((20, 20, 20), (1000, 500, 2000, 1500))
        img.save(buf, fmt)
        resp = client.post("/predict?format=png&crop=false", data={"image": (io.BytesIO(buf.getvalue()), "a")},
                           content_type="multipart/form-data")
        assert resp.status_code == 200
        out = Image.open(io.BytesIO(resp.data))
        assert out.width * out.height <= 1_000_000 and abs(out.width / out.height - 1.5) < 0.01, (fmt, out.size)
        assert float(resp.headers["X-Image-Scale"]) == pytest.approx(out.width / 3000, rel=1e-3)
        body = client.post("/predict", data={"image": (io.BytesIO(buf.getvalue()), "a")},
                           content_type="multipart/form-data").get_json()
        assert body["width"] * body["height"] <= 1_000_000 and body["scale"] < 1


def test_q_with_a_nul_matches_nothing(client):
    assert client.get("/api/products?q=%00").get_json()["total"] == 0
    assert client.get("/api/products?q=a%00").get_json()["total"] == 0


def test_every_error_code_the_app_can_answer_is_documented():
    import re

    from webapp import errors, openapi, server

    used = {code for _, _, _, code in server._PARSE_ERRORS} | set(errors._HTTP_CODES.values())
    used |= {errors._http_code(s) for s in (402, 409, 418, 500, 502, 504)}
    for path in [*(ROOT / "webapp").glob("*.py"), ROOT / "core" / "images.py"]:
        used |= set(re.findall(r'(?:ApiError|ImageError|error_bytes|_json_error)\([^"\n]*"([a-z_]+)"',
                               path.read_text()))
    used |= set(re.findall(r'"(\w+)", "(?:malformed|the request|upload is)', (ROOT / "webapp" / "server.py").read_text()))
    assert "overloaded" in used and "request_timeout" in used
    assert used <= set(openapi.ERROR_CODES), used - set(openapi.ERROR_CODES)


def test_pipelined_requests_are_each_answered(server):
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server), timeout=5) as s:
        s.sendall(one + one + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.count(b"HTTP/1.1 200 OK") == 3


def test_a_pipelined_request_left_incomplete_gets_a_408_not_a_thread(server):
    with socket.create_connection(("127.0.0.1", server), timeout=READ_TIMEOUT + 3) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /predict HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 50\r\n\r\nab")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.startswith(b"HTTP/1.1 200 OK") and b"HTTP/1.1 408 Request Timeout" in out


def test_the_request_scan_walks_chunked_bodies_once():
    from webapp.server import RequestScan

    scan = RequestScan(max_body=10_000)
    buf = bytearray(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert not scan.complete(buf)
    for _ in range(500):
        buf += b"1\r\na\r\n"
        assert not scan.complete(buf)
    buf += b"0\r\n"
    assert not scan.complete(buf)
    buf += b"\r\n"
    assert scan.complete(buf)
    assert RequestScan(10).complete(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n")  # over the limit: 413 now
    assert not RequestScan(100).complete(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nabc")
    assert RequestScan(100).complete(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")  # the parser's 400
