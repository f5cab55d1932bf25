"""Photos/s of the batch jobs (training.batch) on this machine: local engine vs Ray with 1 and 2 actors.

    python benchmarks/batch_bench.py --photos 40                 # catalogue cut-outs with the shipped model
    python benchmarks/batch_bench.py --photos 10 --job label     # ISNet teacher into a scratch label cache

Each run writes into a fresh scratch folder (nothing is skipped), on a sample of ../shared/data/ikea. Ray's overhead
is its time over the local engine's at the same worker count (1), and for 2 workers over local's time / 2 (the ideal
speed-up). The load average is printed: a shared machine (a labelling job beside it) skews every number.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.manifest import ManifestRecord  # noqa: E402
from training.batch import EngineConfig, run  # noqa: E402
from training.batch_jobs import (CutoutJob, FsStorage, LabelJob, ServingSettings, cutout_items,  # noqa: E402
                                 label_items)


def sample(photos: Path, n: int) -> list[tuple[ManifestRecord, str]]:
    """The first n photos (sorted names) of a folder, with their hashes."""
    files = sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))[:n]
    return [(ManifestRecord(id=p.stem, path=str(p), sha256=hashlib.sha256(p.read_bytes()).hexdigest(), width=0,
                            height=0), str(p)) for p in files]


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file()}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _descendants_cpu_seconds() -> float:
    """CPU seconds of this process's living descendants (and their waited-for children), from /proc: the Ray
    instance's GCS, raylet and actors, read just before it shuts down."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(v) for v in fields[11:15]) / tick  # utime, stime, cutime, cstime
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - mine
        mine |= frontier
    return sum(times[pid] for pid in mine)


def main() -> int:
    """Run the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos-dir", type=Path, default=ROOT.parent / "shared" / "data" / "ikea" / "products")
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--job", choices=["cutouts", "label"], default="cutouts")
    ap.add_argument("--model-dir", default=str(ROOT / "models"))
    ap.add_argument("--isnet-model", type=Path, default=ROOT.parent / "shared" / "models" / "isnet_small.onnx")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--keep", type=Path, default=None,
                    help="write each run's output to KEEP/<engine>-<workers> (kept) and check they are identical")
    args = ap.parse_args()

    records = sample(args.photos_dir, args.photos)
    if args.job == "cutouts":
        job, items = CutoutJob, cutout_items(records)
        kwargs = lambda out: {"model_dir": args.model_dir, "out": FsStorage(out), "settings": ServingSettings()}  # noqa: E731
    else:
        from training.teacher import ISNetConfig, ISNetTeacher

        factory = functools.partial(ISNetTeacher, ISNetConfig(model_path=args.isnet_model, threads=1))
        job, items = LabelJob, label_items(records)
        kwargs = lambda out: {"teacher_factory": factory, "cache": FsStorage(out)}  # noqa: E731

    import ray

    rows = []
    for engine, workers in (("local", 1), ("ray", 1), ("ray", 2)):
        # CPU seconds of this process and of every process it started (a Ray instance started and shut down within
        # the row: its raylet, GCS and actors): Ray's cost independent of what else the machine is doing.
        cpu0 = _cpu_seconds()
        if engine == "ray":
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
        try:
            with tempfile.TemporaryDirectory() as scratch:
                out = str(args.keep / f"{engine}-{workers}") if args.keep else scratch
                cfg = EngineConfig(engine, workers=workers, batch_size=4)
                t0 = time.perf_counter()
                summary = run(job, kwargs(out), items, cfg, desc=f"{engine} x{workers}")
                seconds = time.perf_counter() - t0
            cpu = _cpu_seconds() - cpu0 + _descendants_cpu_seconds()
        finally:
            if engine == "ray":
                ray.shutdown()
        rows.append({"engine": engine, "workers": workers, "photos": summary.ok, "failed": summary.failed,
                     "seconds": round(seconds, 2), "photos_per_s": round(summary.ok / seconds, 3),
                     "startup_s": round(summary.first_batch_seconds, 2),
                     "steady_photos_per_s": round(summary.steady_per_second, 3),
                     "cpu_s_per_photo": round(cpu / max(1, summary.ok), 4),
                     "load_avg_1m": round(os.getloadavg()[0], 2)})
    base, steady = rows[0]["seconds"], rows[0]["steady_photos_per_s"]
    for row in rows:
        ideal = base / row["workers"]  # local's time divided among the workers: perfect scaling, no overhead
        row["overhead_pct"] = round(100 * (row["seconds"] - ideal) / ideal, 1)
        # Same, once the actors are up (start-up is a fixed cost per run, whatever the number of photos).
        row["steady_overhead_pct"] = round(100 * (steady * row["workers"] / row["steady_photos_per_s"] - 1), 1)
        row["cpu_overhead_pct"] = round(100 * (row["cpu_s_per_photo"] / rows[0]["cpu_s_per_photo"] - 1), 1)
    print(f"\n{args.job}: {len(items)} photos from {args.photos_dir}, {os.cpu_count()} cores")
    print("| engine | workers | photos | s | photos/s | start-up s | steady photos/s | wall overhead vs ideal "
          "(total / steady) | CPU s/photo (all processes) | CPU overhead | load avg |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['engine']} | {r['workers']} | {r['photos']} | {r['seconds']} | {r['photos_per_s']} | "
              f"{r['startup_s']} | {r['steady_photos_per_s']} | {r['overhead_pct']:+.1f}% / "
              f"{r['steady_overhead_pct']:+.1f}% | {r['cpu_s_per_photo']} | {r['cpu_overhead_pct']:+.1f}% | "
              f"{r['load_avg_1m']} |")
    if args.keep:
        trees = {run_dir.name: _tree(run_dir) for run_dir in sorted(args.keep.iterdir())}
        first = next(iter(trees.values()))
        same = all(tree == first for tree in trees.values())
        print(f"outputs under {args.keep}: {len(first)} files each; identical across {', '.join(trees)}: {same}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
