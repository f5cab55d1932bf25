"""Reliability benchmark: overload, slow clients, huge images and hostile requests against a local gunicorn.

    .venv/bin/python benchmarks/load_bench.py [--scenarios capacity,overload,slow,huge,hostile]
        [--overload-factor 2.5] [--overload-seconds 60] [--clients 64] [--slow 64] [--hostile 5000]
        [--port N  (use a server already running, e.g. `make run`; default: start one like `make run` does)]

Starts gunicorn with gunicorn.conf.py exactly as `make run` does (everything as in production: 2 workers, the
RoomFit worker, rate limiting and load shedding on) on 127.0.0.1, then:

- capacity: closed loop at concurrency 8 for --capacity-seconds; capacity = 200s per second, and p50 at concurrency 1.
- overload: open loop at --overload-factor x capacity for --overload-seconds from --clients source addresses
  (127.0.0.2, 127.0.0.3, ...), a new connection per request, 10 s client timeout; prints the share of the excess shed
  with 429/503 within 100 ms, goodput against capacity, the shed latency, timeouts; then probes at concurrency 1
  until the p50 of a 0.5 s window is back within 1.5x (+5 ms) of the idle p50 (the recovery time).
- slow: --slow connections send headers with Content-Length: 100000 and 2 body bytes; meanwhile /healthz and
  /predict are timed one at a time.
- huge: 8 concurrent format=png uploads (4 all-zero 6000x6000 PNGs, 4 ~40 MP JPEGs); worker RSS sampled every 50 ms:
  idle, peak (sum over workers), and 3 s after.
- hostile: --hostile raw requests from benchmarks/hostile.py (protocol errors, bad hosts, broken uploads), 8 at a
  time: counts 5xx, API errors not in the JSON shape, and worker restarts (worker pids before/after).
All load goes to 127.0.0.1 only and every scenario is bounded in count and time.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import hostile  # noqa: E402
from api_bench import multipart, worker_rss_mb, _workers  # noqa: E402
from core.localproc import free_port, stop  # noqa: E402

CLIENT_TIMEOUT = 10.0
SHED_FAST_S = 0.100
# Source addresses (all loopback): closed-loop and probe requests rotate over them too, so the per-client rate limiter
# (10/s per worker) measures nothing but itself only in the overload scenario, where the load had 64 too.
SOURCES = [f"127.0.0.{2 + i}" for i in range(64)]
_next_source = iter(range(10**12))


def next_source() -> str:
    """The next source address, round robin."""
    return SOURCES[next(_next_source) % len(SOURCES)]


@dataclass
class Result:
    """One request's outcome: when it was sent (s from the scenario start), status (0: timeout, -1: error), latency."""

    sent: float
    status: int
    latency: float


@dataclass
class Table:
    """Rows of (scenario, measure, value, target)."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, scenario: str, measure: str, value: str, target: str = "") -> None:
        self.rows.append((scenario, measure, value, target))
        print(f"  {scenario:9s} {measure:46s} {value:>22s}  {target}", flush=True)


def pct(values: list[float], q: int) -> float:
    """q-th percentile, nan for fewer than 2 values."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) >= 2 else float("nan")


async def request(port: int, raw: bytes, *, source: str | None = None, timeout: float = CLIENT_TIMEOUT) -> tuple[int, bytes]:
    """Send a raw request on a new connection; (status, body); 0 on timeout, -1 on a connection error."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                          local_addr=(source, 0) if source else None)
            writer.write(raw)
            status_line = await reader.readline()
            length, headers = 0, []
            while (line := await reader.readline()) not in (b"\r\n", b""):
                headers.append(line)
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while status_line.startswith(b"HTTP/1.1 100"):  # a 100 Continue, then the real answer
                status_line = await reader.readline()
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            return int(status_line.split(b" ", 2)[1]), b"".join(headers) + b"\r\n" + body
    except TimeoutError:
        return 0, b""
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        return -1, b""
    finally:
        if writer is not None:
            writer.close()


def predict_request(body: bytes, ctype: str, path: str = "/predict") -> bytes:
    """A raw POST /predict that closes the connection after the answer."""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


async def closed_loop(port: int, raw: bytes, concurrency: int, seconds: float) -> list[Result]:
    """concurrency clients sending back to back for seconds."""
    t0 = time.monotonic()
    out: list[Result] = []

    async def client() -> None:
        while time.monotonic() - t0 < seconds:
            s = time.monotonic()
            status, _ = await request(port, raw, source=next_source())
            out.append(Result(s - t0, status, time.monotonic() - s))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return out


async def open_loop(port: int, raw: bytes, rate: float, seconds: float, sources: list[str]) -> list[Result]:
    """rate requests per second for seconds, whatever the answers (each from the next source address)."""
    t0 = time.monotonic()
    out: list[Result] = []
    tasks = []

    async def one(i: int, sent: float) -> None:
        status, _ = await request(port, raw, source=sources[i % len(sources)])
        out.append(Result(sent, status, time.monotonic() - t0 - sent))

    n = int(rate * seconds)
    for i in range(n):
        due = i / rate
        delay = due - (time.monotonic() - t0)
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, time.monotonic() - t0)))
    await asyncio.gather(*tasks)
    return out


async def recovery(port: int, raw: bytes, normal_p50: float, limit: float = 30.0) -> tuple[float, float]:
    """Seconds after the call until a 0.5 s window's p50 (concurrency 1) is back to normal; and that p50."""
    t0 = time.monotonic()
    threshold = normal_p50 * 1.5 + 0.005
    while time.monotonic() - t0 < limit:
        w0, window = time.monotonic(), []
        while time.monotonic() - w0 < 0.5:
            s = time.monotonic()
            status, _ = await request(port, raw, source=next_source())
            window.append(time.monotonic() - s if status == 200 else CLIENT_TIMEOUT)
        p50 = statistics.median(window)
        if p50 <= threshold:
            return time.monotonic() - t0, p50
    return float("inf"), float("nan")


def sample_rss(pid: int, stop_event: threading.Event, peaks: list[float]) -> None:
    """Record the workers' summed RSS every 50 ms until stop_event."""
    while not stop_event.is_set():
        peaks.append(sum(worker_rss_mb(pid)))
        time.sleep(0.05)


def start_server(tmp: str, port: int) -> subprocess.Popen:
    """gunicorn as `make run` starts it, on a scratch database; waits for /readyz."""
    env = {**os.environ, "SECRET_KEY": "bench", "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warning",
           "DATABASE": os.path.join(tmp, "bench.sqlite"), "CACHE_DIR": os.path.join(tmp, "cache")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    flask = [str(ROOT / ".venv" / "bin" / "flask"), "--app", "webapp"]
    subprocess.run([*flask, "init-db"], cwd=ROOT, env=env, check=True, capture_output=True)
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "webapp:create_app()"],
                            cwd=ROOT, env=env, stdout=open(os.path.join(tmp, "server.log"), "wb"),
                            stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.05)
    stop(proc)
    sys.exit("gunicorn was not ready within 30 s")


def huge_images() -> list[tuple[str, bytes]]:
    """An all-zero 6000x6000 PNG (36 MP) and a ~40 MP JPEG photo-like gradient."""
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (6000, 6000)).save(png, "PNG")
    jpg = io.BytesIO()
    grad = Image.linear_gradient("L").resize((7744, 5164))
    Image.merge("RGB", (grad, grad.transpose(Image.ROTATE_180), grad)).save(jpg, "JPEG", quality=80)
    return [("png-36mp", png.getvalue()), ("jpeg-40mp", jpg.getvalue())]


def run_scenarios(args: argparse.Namespace, port: int, pid: int | None, table: Table) -> None:
    """Run the chosen scenarios against the server on port (pid: its master, for worker RSS; None when external)."""
    image = sorted((ROOT / "data" / "demo" / "images").glob("*.jpg"))[0]
    body, ctype = multipart(image.read_bytes(), image.name)
    raw = predict_request(body, ctype)
    scenarios = args.scenarios.split(",")
    asyncio.run(closed_loop(port, raw, 4, 1.0))  # warm-up: every interpreter built
    c1 = asyncio.run(closed_loop(port, raw, 1, 3.0))
    normal_p50 = statistics.median([r.latency for r in c1 if r.status == 200])
    table.add("capacity", "p50 at concurrency 1", f"{normal_p50 * 1000:.1f} ms")
    capacity = args.capacity
    if not capacity:
        cn = asyncio.run(closed_loop(port, raw, 8, args.capacity_seconds))
        capacity = sum(r.status == 200 for r in cn) / args.capacity_seconds
        table.add("capacity", "goodput at concurrency 8 (non-200s)",
                  f"{capacity:.1f} req/s ({sum(r.status != 200 for r in cn)})")

    if "overload" in scenarios:
        rate = capacity * args.overload_factor
        sources = [f"127.0.0.{2 + i}" for i in range(args.clients)]
        res = asyncio.run(open_loop(port, raw, rate, args.overload_seconds, sources))
        rec_s, rec_p50 = asyncio.run(recovery(port, raw, normal_p50))
        ok = [r for r in res if r.status == 200]
        shed = [r for r in res if r.status in (429, 503)]
        fast = [r for r in shed if r.latency <= SHED_FAST_S]
        # The excess: what was offered beyond what was served (offered - capacity when goodput equals capacity).
        excess = max(1, len(res) - len(ok))
        timeouts = sum(r.status == 0 for r in res)
        other = len(res) - len(ok) - len(shed) - timeouts
        in_window = sum(1 for r in ok if r.sent + r.latency <= args.overload_seconds)
        name = f"{args.overload_factor:g}x"
        table.add(name, f"offered ({args.clients} client addresses, {args.overload_seconds:g} s)",
                  f"{rate:.0f} req/s, {len(res)}")
        table.add(name, "excess (offered - served) shed with 429/503 in 100 ms", f"{len(fast) / excess:.0%}", ">= 90%")
        table.add(name, "  the same against offered - capacity",
                  f"{len(fast) / max(1.0, len(res) - capacity * args.overload_seconds):.0%}")
        table.add(name, "shed: total / p50 / p99 latency",
                  f"{len(shed)} / {pct([r.latency for r in shed], 50) * 1000:.0f} / "
                  f"{pct([r.latency for r in shed], 99) * 1000:.0f} ms")
        table.add(name, "goodput (200s within the window) / capacity",
                  f"{in_window / args.overload_seconds:.1f} req/s = {in_window / args.overload_seconds / capacity:.0%}",
                  ">= 80%")
        table.add(name, "200s p50 / p99 latency", f"{pct([r.latency for r in ok], 50) * 1000:.0f} / "
                                                 f"{pct([r.latency for r in ok], 99) * 1000:.0f} ms")
        table.add(name, "client timeouts (10 s) / other errors", f"{timeouts} / {other}", "0 / 0")
        table.add(name, "recovery: p50 back to normal after the load", f"{rec_s:.2f} s (p50 {rec_p50 * 1000:.1f} ms)",
                  "<= 5 s")

    if "slow" in scenarios:
        slow = []
        head = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 100000\r\n\r\nab")
        for _ in range(args.slow):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(head)
            slow.append(s)
        time.sleep(0.2)
        health, predict = [], []
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.slow_seconds:
            s = time.monotonic()
            status, _ = asyncio.run(request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
            health.append((status, time.monotonic() - s))
            s = time.monotonic()
            status, _ = asyncio.run(request(port, raw, source=next_source()))
            predict.append((status, time.monotonic() - s))
        for s in slow:
            s.close()
        for what, values in (("/healthz", health), ("/predict", predict)):
            lat = [v for _, v in values]
            table.add("slow", f"{what} with {args.slow} slow bodies: p50 / max (non-200)",
                      f"{pct(lat, 50) * 1000:.1f} / {max(lat) * 1000:.1f} ms ({sum(st != 200 for st, _ in values)})",
                      "<= 100 ms")

    if "huge" in scenarios and pid is not None:
        files = huge_images()
        time.sleep(1.0)
        idle = sum(worker_rss_mb(pid))
        stop_event, samples = threading.Event(), []
        sampler = threading.Thread(target=sample_rss, args=(pid, stop_event, samples))
        sampler.start()
        reqs = []
        for i in range(8):
            name, data = files[i % 2]
            b, ct = multipart(data, name)
            reqs.append(predict_request(b, ct, "/predict?format=png"))

        async def all_at_once() -> list[tuple[int, float]]:
            async def one(r: bytes) -> tuple[int, float]:
                s = time.monotonic()
                status, _ = await request(port, r, source=next_source(), timeout=60)
                return status, time.monotonic() - s
            return await asyncio.gather(*(one(r) for r in reqs))

        results = asyncio.run(all_at_once())
        time.sleep(3.0)
        stop_event.set()
        sampler.join()
        after = sum(worker_rss_mb(pid))
        table.add("huge", "uploads (PNG 36 MP all-zero, JPEG 40 MP)",
                  f"{len(files[0][1]) // 1024} kB, {len(files[1][1]) // 1024} kB")
        table.add("huge", "8 concurrent format=png: statuses",
                  ",".join(str(s) for s, _ in results) + f" (max {max(t for _, t in results):.1f} s)")
        table.add("huge", "workers' RSS: idle / peak / 3 s after", f"{idle:.0f} / {max(samples):.0f} / {after:.0f} MB",
                  "peak < 1024, after <= idle + 20%")

    if "hostile" in scenarios:
        pids = sorted(_workers(pid)) if pid else []
        reqs = hostile.hostile_requests(seed=16, count=args.hostile)
        results: list[tuple[str, int, bytes]] = []

        def send(item: tuple[str, bytes]) -> None:
            status, resp = asyncio.run(request(port, item[1], source=next_source()))
            results.append((item[0], status, resp))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, reqs))
        five = [(n, s) for n, s, _ in results if s >= 500]
        not_json = []
        for name, status, resp in results:
            if status >= 400 and (b"predict" in name.encode() or name.startswith(("upload", "chunk", "q-", "cl-"))):
                try:
                    err = json.loads(resp.split(b"\r\n\r\n", 1)[1])["error"]
                    assert set(err) == {"code", "message"}
                except (ValueError, KeyError, IndexError, AssertionError, TypeError):
                    not_json.append((name, status))
        lost = sum(s <= 0 for _, s, _ in results)
        restarts = len(set(pids) - set(_workers(pid))) if pid else 0
        table.add("hostile", "requests / 5xx / no answer", f"{len(results)} / {len(five)} / {lost}", "0 5xx")
        table.add("hostile", "API errors not in the JSON shape", f"{len(not_json)}", "0")
        table.add("hostile", "worker restarts", f"{restarts}", "0")
        if five or not_json:
            print("  first 5xx / non-JSON:", five[:5], not_json[:5])


def main() -> None:
    """Start (or use) a server, run the scenarios and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="overload,slow,huge,hostile")
    ap.add_argument("--port", type=int, default=0, help="a server already running on 127.0.0.1 (default: start one)")
    ap.add_argument("--capacity", type=float, default=0.0, help="req/s (default: measured)")
    ap.add_argument("--capacity-seconds", type=float, default=10.0)
    ap.add_argument("--overload-factor", type=float, default=2.5)
    ap.add_argument("--overload-seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--slow", type=int, default=64)
    ap.add_argument("--slow-seconds", type=float, default=3.0)
    ap.add_argument("--hostile", type=int, default=5000)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other jobs skew every number)")
    table = Table()
    if args.port:
        run_scenarios(args, args.port, None, table)
        return
    with tempfile.TemporaryDirectory(prefix="roomfit-load-") as tmp:
        port = free_port()
        proc = start_server(tmp, port)
        try:
            run_scenarios(args, port, proc.pid, table)
        finally:
            stop(proc, timeout=20)
        log = Path(tmp, "server.log").read_text(errors="replace")
        print(f"server log: {log.count('Traceback')} tracebacks, {log.count('Booting worker')} worker boots")


if __name__ == "__main__":
    main()
