"""Fast vs pix2pix side by side: params, MACs, file sizes, ai-edge-litert latency (1 thread, interleaved rounds so a
shared CPU slows both alike), the served mask refinement's cost and the test IoUs from metrics.json. Prints a table; run `make bench`."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.export import load_run_model  # noqa: E402
from training.model import mac_breakdown  # noqa: E402
from core.refine import GuidedFilter, refine  # noqa: E402

log = logging.getLogger(__name__)


def litert_runner(path: Path, threads: int):
    """A callable running one image through a TFLite file with ai-edge-litert."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]

    def run(x: np.ndarray) -> None:
        interp.set_tensor(inp["index"], x)
        interp.invoke()

    return run, tuple(inp["shape"])


def interleaved_latency(files: dict[str, Path], threads: int, rounds: int) -> dict[str, float]:
    """Median ms per image for each file, alternating files every round."""
    runners = {k: litert_runner(p, threads) for k, p in files.items()}
    rng = np.random.default_rng(0)
    inputs = {k: rng.uniform(0, 255, shape).astype(np.float32) for k, (_, shape) in runners.items()}
    times: dict[str, list[float]] = {k: [] for k in files}
    for r in range(rounds + 3):
        for k, (run, _) in runners.items():
            t = time.perf_counter()
            run(inputs[k])
            if r >= 3:  # warm-up rounds
                times[k].append((time.perf_counter() - t) * 1000)
    return {k: float(np.median(v)) for k, v in times.items()}


def _refine_latency(rounds: int, size: int = 160, photo_side: int = 500) -> float:
    """Median ms of webapp.refine with its default settings: a size² probability onto a photo_side² photo."""
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (photo_side, photo_side, 3), dtype=np.uint8))
    prob = rng.uniform(0, 1, (size, size)).astype(np.float32)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        refine(prob, photo, GuidedFilter())
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000


def _interval(bounds: list[float]) -> str:
    """A 95% interval as table text."""
    return "{:.3f}–{:.3f}".format(*bounds)


def _cross_rows(row: dict, groups: dict, suffix: str) -> None:
    """Rows of the cross-shop test split (photos from other shops), overall and by background."""
    for group, g in groups.items():
        row[f"cross-shop {group}: fg IoU{suffix}"] = g["foreground_iou"]
        row[f"cross-shop {group}: fg IoU{suffix}, 95% interval"] = _interval(g["foreground_iou_ci95"])
        row[f"cross-shop {group}: category accuracy{suffix}"] = g["category_accuracy"]
        if "category_accuracy_ci95" in g:
            row[f"cross-shop {group}: category accuracy{suffix}, 95% interval"] = _interval(g["category_accuracy_ci95"])
        row[f"cross-shop {group}: photos"] = str(g["images"])


def _metric_rows(row: dict, scored: dict, suffix: str) -> None:
    """The test-split rows of one evaluate block (classed photos and all product photos) into `row`."""
    m = scored.get("classed", {})
    for key, label in (("mean_iou", "mean IoU (9 classes)"), ("mean_iou_dominant", "mean IoU, dominant label"),
                       ("foreground_iou", "foreground IoU")):
        row[f"test {label}{suffix}"] = m.get(key, float("nan"))
        if f"{key}_ci95" in m:  # bootstrap over the test photos, from an evaluate run that recorded it
            row[f"test {label}{suffix}, 95% interval"] = _interval(m[f"{key}_ci95"])
    row[f"test category accuracy{suffix}"] = m.get("category_accuracy", float("nan"))
    # The masks alone: the mean IoU if every photo's foreground took its true class (what the class decision costs
    # is the gap to the first row).
    row[f"test mean IoU (9 classes) if every class were right{suffix}"] = m.get("mean_iou_true_class", float("nan"))
    if "cross_shop" in scored:  # model 2.0: a model entry of metrics.json (not the refined sub-block)
        _cross_rows(row, scored["cross_shop"]["plain"], suffix)
    negatives = scored.get("negatives", {})
    neg = negatives.get("with_decision", negatives.get("legacy_rule"))  # model.json's decision, else 1.x's rule
    if neg:
        row[f"negative set: share given a product ({neg['images']} images)"] = neg["false_positive_rate"]
        row["negative set: share given a product, 95% interval"] = _interval(neg["false_positive_rate_ci95"])
    products = scored.get("products", {})  # every test product photo, classed or not
    row[f"test foreground IoU, all product photos{suffix}"] = products.get("foreground_iou", float("nan"))
    if "foreground_iou_ci95" in products:
        row[f"test foreground IoU, all product photos{suffix}, 95% interval"] = _interval(products["foreground_iou_ci95"])


def main(argv: list[str] | None = None) -> int:
    """Print the comparison table."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--fast-run", type=Path, default=Path("runs/train_fast"))
    p.add_argument("--baseline-run", type=Path, default=Path("runs/train_pix2pix"))
    p.add_argument("--fast-export", type=Path, default=Path("models/_work/fast"))
    p.add_argument("--baseline-export", type=Path, default=Path("models/_work/pix2pix"))
    p.add_argument("--metrics", type=Path, default=Path("models/eval/metrics.json"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=30)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    models = {"fast": (args.fast_run, args.fast_export), "pix2pix": (args.baseline_run, args.baseline_export)}
    for name, (run, export) in models.items():
        if not (export / "roomfit_seg_fp32.tflite").is_file():
            print(f"error: {export}/roomfit_seg_fp32.tflite missing: run `make export` first")
            return 2
    metrics = json.loads(args.metrics.read_text())["models"] if args.metrics.is_file() else {}
    rows: dict[str, dict[str, str | float]] = {}
    files = {}
    for name, (run, export) in models.items():
        model, cfg = load_run_model(run)
        row = rows.setdefault(name, {})
        row["input"] = f"{cfg['input_size']}×{cfg['input_size']}"
        row["params (M)"] = model.count_params() / 1e6
        # The "≥ 8× fewer MACs" is about the decoder: both models share the MobileNetV2 encoder, which
        # costs the same in either, so the totals' ratio is capped near total / encoder.
        for convention, at_output in (("", False), (", TF-profiler convention", True)):
            parts = mac_breakdown(model, transpose_at_output=at_output)
            row[f"MACs{convention} (G)"] = sum(parts.values()) / 1e9
            row[f"decoder MACs{convention} (G)"] = parts["decoder"] / 1e9
        row["encoder MACs (G)"] = parts["encoder"] / 1e9
        for key, fname in (("fp32 TFLite (MB)", "roomfit_seg_fp32.tflite"), ("fp16 TFLite (MB)", "roomfit_seg_fp16.tflite"),
                           (".h5 (MB)", "roomfit_seg.h5")):
            f = export / fname
            row[key] = f.stat().st_size / 1e6 if f.is_file() else float("nan")
        for kind in ("fp32", "fp16"):
            files[f"{name}/{kind}"] = export / f"roomfit_seg_{kind}.tflite"
        scored = metrics.get(name, {})
        _metric_rows(row, scored, "")
        if "refined" in scored:  # the served pipeline: foreground from webapp.refine
            _metric_rows(row, scored["refined"], ", refined as served")
        if "refined" in scored.get("cross_shop", {}):
            _cross_rows(row, scored["cross_shop"]["refined"], ", refined as served")
    lat = interleaved_latency(files, args.threads, args.rounds)
    for name in models:
        rows[name][f"litert fp32 ms ({args.threads} thread)"] = lat[f"{name}/fp32"]
        rows[name][f"litert fp16 ms ({args.threads} thread)"] = lat[f"{name}/fp16"]
    refine_ms = _refine_latency(args.rounds)
    for name in models:  # a post-process on the model's output: the same cost whichever model produced it
        rows[name]["refine ms (500×500 photo, 1 thread of numpy)"] = refine_ms
    keys = list(rows["fast"])
    print(f"| metric | fast | pix2pix | pix2pix / fast |\n|---|---:|---:|---:|")
    for k in keys:
        f, b = rows["fast"][k], rows["pix2pix"].get(k, float("nan"))  # a block only one model was scored on
        if isinstance(f, str):
            print(f"| {k} | {f} | {b} | |")
            continue
        ratio = b / f if f else float("nan")
        print(f"| {k} | {f:.4g} | {b:.4g} | {ratio:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
