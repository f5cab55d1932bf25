"""One batch path for the per-photo jobs (teacher labels, catalogue cut-outs), in-process or on Ray Data.

A job is a callable class: `__init__(**kwargs)` builds its session once (the teacher, the served model) and
`__call__(batch)` processes a batch of items (a dict of equal-length columns) and returns one result row per item
(`id`, `status` ok|failed, `error`). `run()` hands the same class to either engine: `local` calls it in this process
(no Ray needed), `ray` passes it to `ray.data.Dataset.map_batches` as a pool of actors, on this machine
(`ray.init()`) or a cluster (`--address`). What is done is decided by the caller before dispatch (by content hash),
so a rerun after a crash only does the rest. Outputs go through `FsStorage` (fsspec): a local folder written with
temp file + rename, or an S3 prefix where each object is one PUT (atomic per object).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import fsspec
from tqdm import tqdm

from core.manifest import atomic_write_bytes

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
REPO_ROOT = Path(__file__).resolve().parents[1]
# What a Ray job's working_dir upload leaves out (cluster runs): data, environments and build outputs.
RAY_EXCLUDES = [".venv", ".git", "data", "build", "runs", "instance", "models/_work", "*.h5", "*.onnx"]


@dataclass(frozen=True)
class EngineConfig:
    """Where and how wide a batch job runs."""

    engine: str = "local"
    workers: int = 1  # Ray: actors in the pool (each builds one session); local: always one, in this process
    batch_size: int = 8  # items per __call__
    address: str | None = None  # Ray: None starts a local Ray; "auto" or "ray://host:10001" joins a cluster
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0  # teacher actors on GPU nodes (onnxruntime-gpu)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.workers < 1 or self.batch_size < 1:
            raise ValueError(f"workers and batch_size must be >= 1, got {self.workers}, {self.batch_size}")


@dataclass
class BatchSummary:
    """What a run did."""

    total: int = 0
    skipped_done: int = 0
    ok: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # item id -> error (the first few are logged)
    seconds: float = 0.0
    first_batch_seconds: float = 0.0  # dispatch to the first finished batch: session builds, actor start-up
    first_batch_items: int = 0
    dispatch_seconds: float = 0.0  # dispatch to the last result (without the skip-done listing)

    @property
    def steady_per_second(self) -> float:
        """Items per second after the first batch: the throughput once the workers are up."""
        rest = self.dispatch_seconds - self.first_batch_seconds
        return (self.ok + self.failed - self.first_batch_items) / rest if rest > 0 else 0.0

    @property
    def per_second(self) -> float:
        """Processed items per second of wall time."""
        return (self.ok + self.failed) / self.seconds if self.seconds > 0 else 0.0


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether an fsspec filesystem is this machine's disk."""
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


class FsStorage:
    """core.cutout_store.Storage over fsspec: a local folder or an object-store prefix (s3://bucket/prefix)."""

    def __init__(self, url: str | Path, storage_options: dict[str, Any] | None = None) -> None:
        self.url = str(url)
        self.storage_options = dict(storage_options or {})
        self.fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.root = root.rstrip("/")
        self.local = _is_local(self.fs)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its URL in each Ray actor rather than pickling a live filesystem (sessions, event loops).
        return FsStorage, (self.url, self.storage_options)

    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def read(self, rel: str) -> bytes:
        """The object's bytes; FileNotFoundError when absent."""
        return self.fs.cat_file(self._path(rel))

    def write(self, rel: str, data: bytes) -> None:
        """Atomic write: temp file + rename locally; one PUT on an object store (atomic per object)."""
        if self.local:
            atomic_write_bytes(self._path(rel), data)
        else:
            self.fs.pipe_file(self._path(rel), data)

    def exists(self, rel: str) -> bool:
        """Whether the object exists."""
        return self.fs.isfile(self._path(rel))

    def listing(self, rel_dir: str) -> set[str]:
        """Relative paths of every object under rel_dir: one listing instead of a HEAD request per item."""
        base = self._path(rel_dir).rstrip("/")
        if not self.fs.exists(base):
            return set()
        prefix = self.root + "/"
        return {p[len(prefix):] if p.startswith(prefix) else p for p in self.fs.find(base)}


def read_bytes(uri: str, storage_options: dict[str, Any] | None = None) -> bytes:
    """The bytes of a local path or a URL fsspec knows (s3://…)."""
    with fsspec.open(uri, "rb", **(storage_options or {})) as f:
        return f.read()


def _batches(items: Sequence[dict[str, Any]], size: int) -> Iterator[dict[str, list[Any]]]:
    """Items as column batches (the shape map_batches hands a callable class)."""
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        yield {k: [item[k] for item in chunk] for k in chunk[0]}


def _rows(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Result rows of a batch's result columns."""
    keys = list(result)
    for values in zip(*(result[k] for k in keys)):
        yield dict(zip(keys, values))


def _count(summary: BatchSummary, rows: Iterable[dict[str, Any]], bar: tqdm, t0: float) -> None:
    """Add one batch's result rows to the summary and the progress bar."""
    first = summary.ok + summary.failed == 0
    for row in rows:
        if str(row["status"]) == "ok":
            summary.ok += 1
        else:
            summary.failed += 1
            summary.errors[str(row["id"])] = str(row["error"])
            if summary.failed <= 10:
                log.warning("%s failed: %s", row["id"], row["error"])
        bar.update(1)
    if first:
        summary.first_batch_seconds = time.perf_counter() - t0
        summary.first_batch_items = summary.ok + summary.failed


def run(job: type, job_kwargs: dict[str, Any], items: Sequence[dict[str, Any]], cfg: EngineConfig, *,
        done: Callable[[dict[str, Any]], bool] | None = None, desc: str = "batch") -> BatchSummary:
    """Run job over the items not `done`, on the chosen engine; returns the counts."""
    t0 = time.perf_counter()
    todo = [item for item in items if done is None or not done(item)]
    summary = BatchSummary(total=len(items), skipped_done=len(items) - len(todo))
    log.info("%s: %d items, %d already done, %d to do on %s", desc, len(items), summary.skipped_done, len(todo),
             cfg.engine)
    t_dispatch = time.perf_counter()
    if todo:
        with tqdm(total=len(todo), desc=desc, unit="img") as bar:
            if cfg.engine == "local":
                fn = job(**job_kwargs)  # the session is built once
                for batch in _batches(todo, cfg.batch_size):
                    _count(summary, _rows(fn(batch)), bar, t_dispatch)
            else:
                _run_ray(job, job_kwargs, todo, cfg, summary, bar, t_dispatch)
    summary.dispatch_seconds = time.perf_counter() - t_dispatch
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_ray(job: type, job_kwargs: dict[str, Any], todo: Sequence[dict[str, Any]], cfg: EngineConfig,
             summary: BatchSummary, bar: tqdm, t0: float) -> None:
    """map_batches over a pool of `cfg.workers` actors, each holding one job instance."""
    import ray  # batch-only dependency, imported where used

    started = not ray.is_initialized()
    if started:
        if cfg.address is None:
            # A local Ray: its workers import this repository's packages as the driver does.
            ray.init(runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}}, include_dashboard=False)
        else:
            # A cluster: ship the code (not the data) to every node.
            ray.init(address=cfg.address, runtime_env={"working_dir": str(REPO_ROOT), "excludes": RAY_EXCLUDES})
    try:
        # Enough blocks to keep every actor busy and spread the tail; not one per batch (a million tiny blocks
        # cost the scheduler more than the work).
        blocks = max(1, min(-(-len(todo) // cfg.batch_size), 64 * cfg.workers))
        ds = ray.data.from_items(list(todo), override_num_blocks=blocks)
        out = ds.map_batches(job, fn_constructor_kwargs=job_kwargs, batch_size=cfg.batch_size,
                             concurrency=cfg.workers, num_cpus=cfg.cpus_per_worker, num_gpus=cfg.gpus_per_worker,
                             batch_format="numpy")
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            _count(summary, _rows(batch), bar, t0)
    finally:
        if started:
            ray.shutdown()
