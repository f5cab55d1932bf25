"""Container test: build the RoomFit image with podman on an offline Debian base, run it, check it, push/pull it.

Run with `make container-test` (root: it installs podman/buildah/runc/debootstrap/docker-registry from apt when
missing). Every network call goes to 127.0.0.1 except the package downloads (Debian mirror, PyPI) of the build.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.localproc import free_port, stop  # noqa: E402
TOOLS = {"podman": "podman", "buildah": "buildah", "runc": "runc", "debootstrap": "debootstrap",
         "docker-registry": "docker-registry"}
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
# Removed from the debootstrap tree: documentation, translations and apt's download cache and lists.
BASE_PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt",
              "var/lib/apt/lists", "var/log")
CONTAINERS_CONF = """\
# Written by scripts/container_test.py (CONTAINERS_CONF points here; /etc is left alone).
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
REGISTRY_CONF = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
"""


class CheckFailed(Exception):
    """A container check failed; the message says which and why."""


@dataclass
class TestConfig:
    """Settings of one container test run."""

    image: str = "localhost/roomfit:container-test"
    base_image: str = "localhost/roomfit-base:bookworm"
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    cache_dir: Path = field(default_factory=lambda: Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "roomfit")
    work_dir: Path = ROOT / "build" / "container-test"
    max_size_mb: float = 300.0
    target_ready_s: float = 3.0
    ready_timeout_s: float = 30.0
    build_timeout_s: float = 1200.0
    workers: int = 2
    keep_image: bool = True


@dataclass
class Results:
    """What the run measured."""

    build_s: float = 0.0
    size_mb: float = 0.0
    ready_s: float = 0.0
    predict_ms: float = 0.0
    push_pull_s: float = 0.0
    memory: str = ""
    model: str = ""
    checks: list[str] = field(default_factory=list)


def sh(cmd: Sequence[str], *, timeout: float = 120, check: bool = True, capture: bool = True,
       env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command with a time limit; CheckFailed with its output's tail when it fails."""
    log.debug("$ %s", " ".join(cmd))
    try:
        proc = subprocess.run(list(cmd), capture_output=capture, text=True, timeout=timeout, env=env, check=False,
                              cwd=cwd)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"`{' '.join(cmd[:3])} …` took longer than {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        tail = ((proc.stdout or "") + (proc.stderr or "")).strip().splitlines()[-15:]
        raise CheckFailed(f"`{' '.join(cmd[:4])} …` exited {proc.returncode}:\n" + "\n".join(tail))
    return proc


def ensure_tools() -> None:
    """Install the container tools from Debian when any is missing."""
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()]
    if not missing:
        return
    if os.geteuid() != 0:
        raise CheckFailed(f"missing {', '.join(missing)}: run as root or `apt-get install {' '.join(missing)}`")
    log.info("installing %s from apt", " ".join(missing))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if sh(install, timeout=600, check=False, env=env).returncode != 0:
        sh(["apt-get", "update", "-q"], timeout=300, env=env)
        sh(install, timeout=600, env=env)


def base_tarball(cfg: TestConfig) -> Path:
    """A Debian minbase root filesystem with python3 as a tarball, built once with debootstrap and cached."""
    key = hashlib.sha256(f"{cfg.suite} {BASE_PACKAGES} {BASE_PRUNE}".encode()).hexdigest()[:12]
    tarball = cfg.cache_dir / f"{cfg.suite}-minbase-{key}.tar.gz"
    if tarball.exists():
        log.info("base: cached %s", tarball)
        return tarball
    cfg.cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("base: debootstrap %s (minbase + %s), about a minute", cfg.suite, BASE_PACKAGES)
    with tempfile.TemporaryDirectory(dir=cfg.cache_dir, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        sh(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", cfg.suite, str(rootfs), cfg.mirror],
           timeout=900)
        for rel in BASE_PRUNE:
            for child in (rootfs / rel).glob("*"):
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        partial = tarball.with_suffix(".partial")
        # tar | gzip through a shell pipeline: numeric owners keep root-owned files root-owned in the image.
        sh(["sh", "-c", f"tar --numeric-owner -C '{rootfs}' -cf - . | gzip -1 > '{partial}'"], timeout=300)
        partial.rename(tarball)  # atomic: a killed run never leaves a half tarball under the final name
    return tarball


def import_base(cfg: TestConfig, tarball: Path, env: dict[str, str]) -> None:
    """Import the tarball as the base image unless the same tarball is already imported."""
    label = tarball.name
    proc = sh(["podman", "image", "inspect", "--format", "{{index .Labels \"roomfit.base\"}}", cfg.base_image],
              check=False, env=env)
    if proc.returncode == 0 and proc.stdout.strip() == label:
        return
    sh(["podman", "import", "--change", f"LABEL roomfit.base={label}", "--change", 'CMD ["python3"]',
        str(tarball), cfg.base_image], timeout=300, env=env)


def model_source(cfg: TestConfig) -> tuple[str, str]:
    """The build context folder holding model.json (models/, or a tiny stand-in while models/ is empty)."""
    real = ROOT / "models" / "model.json"
    if real.exists():
        return "models", json.loads(real.read_text())["name"]
    stand_in = ROOT / "build" / "container-model"
    log.warning("models/ has no model.json yet: building with the tiny test model in %s", stand_in)
    if not (stand_in / "model.json").exists():
        code = ("import sys; sys.path.insert(0, 'tests/webapp'); from pathlib import Path; "
                "from conftest import build_tiny_model; build_tiny_model(Path(sys.argv[1]))")
        sh([sys.executable, "-c", code, str(stand_in)], timeout=300, cwd=ROOT)
    return str(stand_in.relative_to(ROOT)), json.loads((stand_in / "model.json").read_text())["name"]


def ca_bundle() -> Path | None:
    """The host's CA bundle, passed to the build as a secret (pip behind a TLS-intercepting proxy)."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def build_image(cfg: TestConfig, model_src: str, env: dict[str, str], res: Results) -> None:
    """podman build with the offline base; docker format so the HEALTHCHECK is kept."""
    cmd = ["podman", "build", "--format", "docker", "--network", "host", "--build-arg", f"BASE_IMAGE={cfg.base_image}",
           "--build-arg", f"MODEL_SRC={model_src}", "--tag", cfg.image]
    bundle = ca_bundle()
    if bundle:
        cmd += ["--secret", f"id=ca,src={bundle}"]
    start = time.monotonic()
    sh([*cmd, str(ROOT)], timeout=cfg.build_timeout_s, env=env)
    res.build_s = time.monotonic() - start
    res.size_mb = int(sh(["podman", "image", "inspect", "--format", "{{.Size}}", cfg.image], env=env).stdout) / 1e6
    if res.size_mb > cfg.max_size_mb:
        raise CheckFailed(f"image is {res.size_mb:.0f} MB, over the {cfg.max_size_mb:.0f} MB target")
    res.checks.append(f"image size {res.size_mb:.0f} MB <= {cfg.max_size_mb:.0f} MB")


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, bytes]:
    """A request to 127.0.0.1 without proxies; returns (status, body)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"refusing to send traffic anywhere but 127.0.0.1: {url}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def multipart(field_name: str, filename: str, payload: bytes, content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@contextmanager
def running_container(cfg: TestConfig, env: dict[str, str], res: Results) -> Iterator[tuple[str, str]]:
    """Run the image read-only on 127.0.0.1 like ECS would; yields (container name, base URL) once /readyz is 200."""
    name = f"roomfit-container-test-{os.getpid()}"
    port = free_port()
    start = time.monotonic()
    sh(["podman", "run", "--detach", "--name", name, "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--publish", f"127.0.0.1:{port}:8000",
        "--env", f"SECRET_KEY={secrets.token_hex(32)}", "--env", f"WEB_CONCURRENCY={cfg.workers}", cfg.image],
       timeout=60, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                status, _ = http(f"{url}/readyz", timeout=2)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                status = 0
            if status == 200:
                break
            if time.monotonic() - start > cfg.ready_timeout_s:
                logs = sh(["podman", "logs", "--tail", "20", name], check=False, env=env)
                raise CheckFailed(f"/readyz not 200 after {cfg.ready_timeout_s:.0f} s (last {status}):\n"
                                  + logs.stdout + logs.stderr)
            time.sleep(0.05)
        res.ready_s = time.monotonic() - start
        yield name, url
    finally:
        sh(["podman", "rm", "--force", "--time", "5", name], check=False, timeout=60, env=env)


def check_app(cfg: TestConfig, name: str, url: str, env: dict[str, str], res: Results) -> None:
    """Health, a real /predict on a demo product photo, non-root user, read-only root, HEALTHCHECK."""
    status, body = http(f"{url}/healthz")
    if status != 200:
        raise CheckFailed(f"/healthz answered {status}: {body[:200]!r}")
    from PIL import Image  # the venv's Pillow; imported here so --help works anywhere

    photo = sorted((ROOT / "data" / "demo" / "images").glob("*.jpg"))[0]
    with Image.open(photo) as im:
        size = im.size
    body, ctype = multipart("image", photo.name, photo.read_bytes(), "image/jpeg")
    start = time.monotonic()
    status, raw = http(f"{url}/predict", data=body, headers={"Content-Type": ctype}, timeout=30)
    res.predict_ms = (time.monotonic() - start) * 1000
    if status != 200:
        raise CheckFailed(f"/predict answered {status}: {raw[:300]!r}")
    answer = json.loads(raw)
    problems = [k for k in ("success", "predictions", "mask", "width", "height", "model") if k not in answer]
    if problems or answer["success"] is not True or (answer["width"], answer["height"]) != size:
        raise CheckFailed(f"/predict JSON is off (missing {problems}): {str(answer)[:300]}")
    if answer["model"]["name"] != res.model:
        raise CheckFailed(f"/predict ran model {answer['model']['name']!r}, expected {res.model!r}")
    with Image.open(io.BytesIO(base64.b64decode(answer["mask"]))) as mask:
        if mask.size != size or mask.mode != "L":
            raise CheckFailed(f"mask is {mask.mode} {mask.size}, expected L {size}")
    labels = [p["label"] for p in answer["predictions"]]
    res.checks.append(f"/predict {photo.name}: 200, mask {size[0]}x{size[1]}, predictions {labels}")

    # The baked-in catalogue (SQLite on the read-only root) and the cut-out cache (on /tmp) work together.
    status, raw = http(f"{url}/api/products?per_page=1")
    listing = json.loads(raw) if status == 200 else {}
    if not listing.get("total"):
        raise CheckFailed(f"/api/products answered {status} with no products: {raw[:200]!r}")
    pid = listing["products"][0]["id"]
    status, raw = http(f"{url}/api/products/{pid}/cutout.png", timeout=30)
    if status != 200 or not raw.startswith(b"\x89PNG"):
        raise CheckFailed(f"/api/products/{pid}/cutout.png answered {status}: {raw[:200]!r}")
    cached = sh(["podman", "exec", name, "sh", "-c", "find /tmp/roomfit-cache -type f | wc -l"], env=env).stdout
    if int(cached.strip() or 0) < 1:
        raise CheckFailed("the cut-out was not cached under /tmp/roomfit-cache")
    res.checks.append(f"catalogue of {listing['total']} products; cut-out of product {pid} cached in /tmp")
    # Memory of the whole container (master + workers, after a prediction): the basis of taskdef.json's size.
    stats = sh(["podman", "stats", "--no-stream", "--format", "{{.MemUsage}}", name], check=False, env=env)
    res.memory = stats.stdout.split("/")[0].strip() or "n/a"

    uid = sh(["podman", "exec", name, "id", "-u"], env=env).stdout.strip()
    if uid == "0":
        raise CheckFailed("the app runs as root")
    res.checks.append(f"runs as uid {uid} (non-root)")
    if sh(["podman", "exec", name, "touch", "/app/written"], check=False, env=env).returncode == 0:
        raise CheckFailed("the root filesystem is writable")
    if sh(["podman", "exec", name, "touch", "/tmp/written"], check=False, env=env).returncode != 0:
        raise CheckFailed("/tmp is not writable for the app user")
    res.checks.append("root filesystem read-only, /tmp writable")
    # The image ships the shared core and the web app only (DEVELOPERS.md "Import rules").
    shipped = sh(["podman", "exec", name, "ls", "/app"], env=env).stdout.split()
    extra = sorted(set(shipped) & {"scraper", "training", "deploy", "tests", "benchmarks", "scripts"})
    if extra or not {"core", "webapp"} <= set(shipped):
        raise CheckFailed(f"/app holds {shipped}: expected core and webapp, and none of {extra}")
    res.checks.append(f"/app ships {' '.join(sorted(shipped))} (no scraper/training/deploy code)")
    sh(["podman", "healthcheck", "run", name], timeout=30, env=env)
    res.checks.append("image HEALTHCHECK passes")


@contextmanager
def local_registry(work: Path) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 (the stand-in for ECR); yields host:port, stops it afterwards."""
    port = free_port()
    storage = work / "registry"
    shutil.rmtree(storage, ignore_errors=True)
    storage.mkdir(parents=True)
    conf = work / "registry.yml"
    conf.write_text(REGISTRY_CONF.format(root=storage, port=port))
    logfile = (work / "registry.log").open("w")
    proc = subprocess.Popen(["docker-registry", "serve", str(conf)], stdout=logfile, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if http(f"http://127.0.0.1:{port}/v2/", timeout=1)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise CheckFailed(f"docker-registry did not start (see {logfile.name})")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)
        logfile.close()
        shutil.rmtree(storage, ignore_errors=True)


def push_pull(cfg: TestConfig, registry: str, env: dict[str, str], res: Results) -> None:
    """Push the image tagged with the commit id (as buildspec.yml does) and pull it back."""
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], check=False).stdout.strip() or "dev"
    remote = f"{registry}/roomfit:{commit}"
    start = time.monotonic()
    sh(["podman", "push", "--quiet", "--tls-verify=false", cfg.image, remote], timeout=300, env=env)
    local_id = sh(["podman", "image", "inspect", "--format", "{{.Id}}", cfg.image], env=env).stdout.strip()
    sh(["podman", "rmi", "--force", remote], check=False, env=env)
    sh(["podman", "pull", "--quiet", "--tls-verify=false", remote], timeout=300, env=env)
    pulled_id = sh(["podman", "image", "inspect", "--format", "{{.Id}}", remote], env=env).stdout.strip()
    sh(["podman", "rmi", "--force", remote], check=False, env=env)
    res.push_pull_s = time.monotonic() - start
    if pulled_id != local_id:
        raise CheckFailed(f"pulled image {pulled_id[:12]} differs from the pushed one {local_id[:12]}")
    res.checks.append(f"pushed {remote} and pulled it back (same image id {local_id[:12]})")


def run(cfg: TestConfig) -> Results:
    """The whole container test."""
    res = Results()
    ensure_tools()
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    conf = cfg.work_dir / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    import_base(cfg, base_tarball(cfg), env)
    model_src, res.model = model_source(cfg)
    log.info("building %s on %s with the model from %s/", cfg.image, cfg.base_image, model_src)
    build_image(cfg, model_src, env, res)
    with ExitStack() as stack:
        name, url = stack.enter_context(running_container(cfg, env, res))
        res.checks.append(f"/readyz 200 after {res.ready_s:.2f} s (target {cfg.target_ready_s:.0f} s)")
        check_app(cfg, name, url, env, res)
    with local_registry(cfg.work_dir) as registry:
        push_pull(cfg, registry, env, res)
    if not cfg.keep_image:
        sh(["podman", "rmi", "--force", cfg.image], check=False, env=env)
    # Dangling layers from earlier builds of the same tag; the tagged image stays as the next run's cache.
    sh(["podman", "image", "prune", "--force"], check=False, timeout=120, env=env)
    return res


def report(res: Results, cfg: TestConfig) -> str:
    """The measurements as a small table."""
    ready_flag = "ok" if res.ready_s <= cfg.target_ready_s else "OVER TARGET"
    rows = [
        ("model", res.model, ""),
        ("image size", f"{res.size_mb:.0f} MB", f"target <= {cfg.max_size_mb:.0f} MB"),
        ("build", f"{res.build_s:.1f} s", ""),
        ("time to ready", f"{res.ready_s:.2f} s", f"target <= {cfg.target_ready_s:.0f} s: {ready_flag}"),
        ("first /predict", f"{res.predict_ms:.0f} ms", ""),
        ("memory", res.memory, f"{cfg.workers} workers, after /predict and a cut-out"),
        ("push + pull", f"{res.push_pull_s:.1f} s", "local registry on 127.0.0.1"),
    ]
    return "\n".join(f"  {a:<15} {b:>12}  {c}" for a, b, c in rows)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mirror", default=TestConfig.mirror, help="Debian mirror for debootstrap")
    p.add_argument("--max-size-mb", type=float, default=TestConfig.max_size_mb)
    p.add_argument("--ready-timeout", type=float, default=TestConfig.ready_timeout_s, help="give up after (s)")
    p.add_argument("--remove-image", action="store_true", help="remove the image afterwards (default: keep as cache)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when every check passes."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="container-test: %(message)s", stream=sys.stderr)
    cfg = TestConfig(mirror=args.mirror, max_size_mb=args.max_size_mb, ready_timeout_s=args.ready_timeout,
                     keep_image=not args.remove_image)
    try:
        res = run(cfg)
    except CheckFailed as exc:
        print(f"container-test: FAILED: {exc}", file=sys.stderr)
        return 1
    for check in res.checks:
        print(f"  ok  {check}")
    print(report(res, cfg))
    print(f"container-test: {len(res.checks)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
