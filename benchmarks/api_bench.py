"""Benchmark POST /predict under gunicorn on 127.0.0.1 and print a table against the targets.

    .venv/bin/python benchmarks/api_bench.py [--model-dir models] [--image data/demo/images/<id>.jpg]
                                             [--requests 300] [--seconds 10] [--concurrency 8]

Starts gunicorn with gunicorn.conf.py (rate limiting off, everything else as in production), measures the time to
ready, latency at concurrency 1, throughput at concurrency N, and each worker's resident memory; then stops it.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.localproc import free_port, stop  # noqa: E402

TARGETS = {"p50_ms": 15.0, "p99_ms": 50.0, "rps": 150.0, "rss_mb": 150.0, "ready_s": 2.0}


@dataclass
class Run:
    """Latencies and errors of one scenario."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_ms: list[float] = field(default_factory=list)  # the app's own timing_ms.total (no queueing, no HTTP)
    inference_ms: list[float] = field(default_factory=list)

    def pct(self, q: float, values: list[float] | None = None) -> float:
        """q-th percentile (1..99) of the latencies, or of other values, in ms."""
        values = self.latencies_ms if values is None else values
        if len(values) < 2:
            return float("nan")
        return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def multipart(image: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one 'image' field, built once."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _workers(master_pid: int) -> list[str]:
    """PIDs of the gunicorn workers (children of the master)."""
    try:
        return Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    except OSError:
        return []


def server_cpu_seconds(master_pid: int) -> float:
    """User + system CPU time used so far by the master and its workers."""
    ticks = 0
    for pid in [str(master_pid), *_workers(master_pid)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def worker_rss_mb(master_pid: int) -> list[float]:
    """Resident memory (MB) of each gunicorn worker (children of the master)."""
    sizes = []
    for pid in _workers(master_pid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return sizes


def load(port: int, body: bytes, ctype: str, *, count: int | None, seconds: float | None, run: Run,
         lock: threading.Lock, path: str = "/predict") -> None:
    """Send requests over one keep-alive connection until count or seconds is reached."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": ctype, "Content-Length": str(len(body))}
    deadline = time.perf_counter() + seconds if seconds else None
    done = 0
    while (count is None or done < count) and (deadline is None or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            ok = resp.status == 200
            timing = json.loads(payload)["timing_ms"] if ok and resp.getheader("Content-Type") == "application/json" \
                else None
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            ok, timing = False, None
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        dt = (time.perf_counter() - t0) * 1000
        with lock:
            if ok:
                run.latencies_ms.append(dt)
                if timing:
                    run.server_ms.append(timing["total"])
                    run.inference_ms.append(timing["inference"])
            else:
                run.errors += 1
        done += 1
    conn.close()


def scenario(port: int, body: bytes, ctype: str, concurrency: int, *, count: int | None = None,
             seconds: float | None = None, path: str = "/predict") -> Run:
    """Run `concurrency` client threads; count is per thread."""
    run, lock = Run(), threading.Lock()
    threads = [threading.Thread(target=load, args=(port, body, ctype),
                                kwargs={"count": count, "seconds": seconds, "run": run, "lock": lock, "path": path})
               for _ in range(concurrency)]
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.seconds = time.perf_counter() - t0
    run.client_cpu = (time.process_time() - c0) / run.seconds  # cores the load generator itself used
    return run


def start_server(args: argparse.Namespace, port: int, tmp: str) -> tuple[subprocess.Popen, float]:
    """Start gunicorn and wait for /readyz; returns the process and the seconds it took to be ready."""
    env = {**os.environ, "SECRET_KEY": "bench", "MODEL_DIR": str(Path(args.model_dir).resolve()),
           "DATABASE": os.path.join(tmp, "bench.sqlite"), "CACHE_DIR": os.path.join(tmp, "cache"),
           "RATELIMIT_ENABLED": "0", "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warning",
           "PROMETHEUS_MULTIPROC_DIR": os.path.join(tmp, "prom")}
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "webapp:create_app()"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while time.perf_counter() - t0 < 30:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc, time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.02)
    stop(proc)
    sys.exit("gunicorn was not ready within 30 s (is the model in --model-dir?)")


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=os.environ.get("MODEL_DIR", str(ROOT / "models")))
    ap.add_argument("--image", type=Path, default=None, help="a 500x500 JPEG (default: the first demo photo)")
    ap.add_argument("--requests", type=int, default=300, help="requests at concurrency 1")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of the concurrent run")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: gunicorn.conf.py)")
    args = ap.parse_args()
    image = args.image or sorted((ROOT / "data" / "demo" / "images").glob("*.jpg"))[0]
    body, ctype = multipart(image.read_bytes(), image.name)
    load_avg = os.getloadavg()[0]  # before we add our own load: other jobs on the machine skew every number

    with tempfile.TemporaryDirectory(prefix="roomfit-bench-") as tmp:
        os.makedirs(os.path.join(tmp, "prom"))
        port = free_port()
        proc, ready_s = start_server(args, port, tmp)
        try:
            scenario(port, body, ctype, args.concurrency, count=10)  # warm every worker thread's interpreter
            c1 = scenario(port, body, ctype, 1, count=args.requests)
            png = scenario(port, body, ctype, 1, count=max(20, args.requests // 5), path="/predict?format=png")
            cpu0 = server_cpu_seconds(proc.pid)
            cn = scenario(port, body, ctype, args.concurrency, seconds=args.seconds)
            cpu_ms = (server_cpu_seconds(proc.pid) - cpu0) * 1000 / max(1, len(cn.latencies_ms) + cn.errors)
            rss = worker_rss_mb(proc.pid)
        finally:
            stop(proc, timeout=15)

    rps = len(cn.latencies_ms) / cn.seconds
    rows = [
        ("ready after start", f"{ready_s:.2f} s", f"<= {TARGETS['ready_s']:.0f} s", ready_s <= TARGETS["ready_s"]),
        ("/predict json p50 (c=1)", f"{c1.pct(50):.1f} ms", f"<= {TARGETS['p50_ms']:.0f} ms",
         c1.pct(50) <= TARGETS["p50_ms"]),
        ("/predict json p90 (c=1)", f"{c1.pct(90):.1f} ms", "", None),
        ("/predict json p99 (c=1)", f"{c1.pct(99):.1f} ms", f"<= {TARGETS['p99_ms']:.0f} ms",
         c1.pct(99) <= TARGETS["p99_ms"]),
        ("  in-app time p50 / p99 (c=1)", f"{c1.pct(50, c1.server_ms):.1f} / {c1.pct(99, c1.server_ms):.1f} ms", "",
         None),
        ("  of which inference p50", f"{c1.pct(50, c1.inference_ms):.1f} ms", "", None),
        ("/predict png p50 (c=1)", f"{png.pct(50):.1f} ms", "", None),
        (f"throughput (c={args.concurrency}, {args.seconds:.0f} s)", f"{rps:.0f} req/s",
         f">= {TARGETS['rps']:.0f} req/s", rps >= TARGETS["rps"]),
        ("  server CPU per request", f"{cpu_ms:.1f} ms", "", None),
        ("  => capacity of idle CPUs", f"{1000 * (os.cpu_count() or 1) / cpu_ms:.0f} req/s", "", None),
        (f"p50 / p99 (c={args.concurrency})", f"{cn.pct(50):.1f} / {cn.pct(99):.1f} ms", "", None),
        ("load generator CPU (c=N)", f"{cn.client_cpu:.2f} cores", "", None),
        ("errors", str(c1.errors + png.errors + cn.errors), "0", c1.errors + png.errors + cn.errors == 0),
        ("worker RSS", " / ".join(f"{r:.0f}" for r in rss) + " MB", f"<= {TARGETS['rss_mb']:.0f} MB each",
         bool(rss) and max(rss) <= TARGETS["rss_mb"]),
    ]
    print(f"\n/predict benchmark: {image.name} ({len(body) // 1024} kB), model {args.model_dir}, "
          f"{os.cpu_count()} CPUs (load average {load_avg:.1f}), gunicorn {len(rss)} workers\n")
    w = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(w)} | {'result':>18} | {'target':>18} | ok |")
    print(f"|{'-' * (w + 2)}|{'-' * 20}|{'-' * 20}|----|")
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("yes" if ok else "NO")
        print(f"| {name.ljust(w)} | {value:>18} | {target:>18} | {mark:>3}|")


if __name__ == "__main__":
    main()
