"""Evaluate trained models on the test split only, at each photo's full resolution (logits upsampled before argmax),
plus file sizes and latency per file type; writes metrics.json and plots. With a refine setting every model is also
scored the way the web app serves it: foreground from the guided-filter refinement (webapp.refine)."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.refine import GuidedFilter, refine

from .dataset import OTHER, Item, mask_lookup, select
from .io import atomic_write_json, model_input, open_upright
from .metrics import (bootstrap_ci, confusion_matrix, dominant_class, foreground_confusion, iou_per_class, mean_iou,
                      pixel_accuracy, true_class_confusion)
from .train import finite_dict, scored_ids

log = logging.getLogger(__name__)


@dataclass
class ModelUnderTest:
    """A trained run and its exported files."""

    name: str
    run_dir: Path
    export_dir: Path | None = None  # holds roomfit_seg*.tflite / .keras / .h5 for size and latency


@dataclass
class EvalConfig:
    """What to evaluate and where to write."""

    models: list[ModelUnderTest]
    out_dir: Path
    teacher_model: Path | None = None  # ISNet ONNX: size and latency of the teacher itself
    latency_images: int = 20
    threads: int = 1
    refine: GuidedFilter | None = None  # also score the served pipeline: foreground from the refined probability
    extra: dict = field(default_factory=dict)


def load_pair(item: Item, lookup: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution RGB photo (uint8, upright like its mask) and its training-id mask."""
    image = np.asarray(open_upright(item.image))
    mask = np.asarray(Image.open(item.mask))
    return image, np.asarray(lookup, np.uint8)[mask]


def predict_full(model, image: np.ndarray, size: int, refine_cfg: GuidedFilter | None = None) -> np.ndarray:
    """Class map at the photo's resolution: resized to the model input as the web app does (Pillow bilinear), logits
    resized back bilinear, then argmax. With `refine_cfg`, foreground is instead where the refined foreground
    probability (1 − softmax background, as the web app computes it) exceeds 0.5, and foreground pixels take their
    best non-background class."""
    import tensorflow as tf

    x = model_input(Image.fromarray(image), size)[None]
    small = model(x, training=False)
    logits = tf.image.resize(small, image.shape[:2], method="bilinear").numpy()[0]
    if refine_cfg is None:
        return np.argmax(logits, axis=-1).astype(np.uint8)
    prob_fg = 1.0 - tf.nn.softmax(small[0], axis=-1).numpy()[..., 0]
    foreground = refine(prob_fg, Image.fromarray(image), refine_cfg) > 0.5
    return np.where(foreground, 1 + np.argmax(logits[..., 1:], axis=-1), 0).astype(np.uint8)


@dataclass
class PhotoScores:
    """Per-photo confusion matrices of one model on a list of photos (photos on axis 0), for sums and bootstraps."""

    conf: np.ndarray  # (photos, classes, classes) pixel counts
    conf_dominant: np.ndarray  # the same with every foreground pixel relabelled with the photo's product label
    fg: np.ndarray  # (photos, 2, 2) background/foreground
    right: np.ndarray  # (photos,) 1 if the photo's product label is its class, 0 if not, -1 if it has no class
    label: np.ndarray  # (photos,) the photo's true class id, -1 if it has none


def score_photos(model, size: int, items: list[Item], classes: tuple[str, ...],
                 refine_cfg: GuidedFilter | None = None) -> PhotoScores:
    """Run the model on each photo at full resolution and keep its confusion matrices."""
    n = len(classes)
    lookup = mask_lookup(classes)
    other = classes.index(OTHER) if OTHER in classes else None
    conf, conf_dom, fg, right, labels = [], [], [], [], []
    for item in tqdm(items, desc="evaluate", unit="img", leave=False):
        image, truth = load_pair(item, lookup)
        pred = predict_full(model, image, size, refine_cfg)
        label = dominant_class(pred, n, other)
        conf.append(confusion_matrix(truth, pred, n))
        conf_dom.append(confusion_matrix(truth, np.where(pred != 0, label, 0), n))
        fg.append(foreground_confusion(truth, pred))
        labels.append(-1 if item.klass is None else classes.index(item.klass))
        right.append(-1 if item.klass is None else int(label == labels[-1]))
    return PhotoScores(np.array(conf), np.array(conf_dom), np.array(fg), np.array(right), np.array(labels))


def cross_shop_scores(model, size: int, items: list[Item], classes: tuple[str, ...],
                      refine_cfg: GuidedFilter | None = None) -> dict:
    """Foreground IoU and category accuracy over photos from other shops, overall and by background (scene / plain /
    white), with bootstrap intervals (calibrate.summarize_groups)."""
    from .calibrate import summarize_groups

    lookup = mask_lookup(classes, keep_unclassed=True)  # unclassed products (dinnerware) count as foreground
    other = classes.index(OTHER) if OTHER in classes else None
    fg, right, keys = [], [], []
    for item in tqdm(items, desc="cross-shop", unit="img", leave=False):
        image, truth = load_pair(item, lookup)
        pred = predict_full(model, image, size, refine_cfg)
        fg.append(foreground_confusion(truth, pred))
        label = dominant_class(pred, len(classes), other)
        right.append(-1 if item.klass not in classes else int(label == classes.index(item.klass)))
        keys.append(item.background or "unknown")
    return summarize_groups(np.array(fg).reshape(-1, 2, 2), np.array(right), keys)


def foreground_scores(model, size: int, items: list[Item], classes: tuple[str, ...],
                      refine_cfg: GuidedFilter | None = None) -> np.ndarray:
    """Per-photo 2×2 background/foreground confusions (photos on axis 0) for any product photos, classed or not: an
    unclassed product's pixels (255 in its mask) are foreground like any class's."""
    lookup = mask_lookup(classes, keep_unclassed=True)
    fg = []
    for item in tqdm(items, desc="foreground", unit="img", leave=False):
        image, truth = load_pair(item, lookup)
        fg.append(foreground_confusion(truth, predict_full(model, image, size, refine_cfg)))
    return np.array(fg).reshape(-1, 2, 2)


def _foreground(fg: np.ndarray) -> float:
    """Foreground IoU from a summed 2×2 background/foreground confusion."""
    return float(iou_per_class(fg)[1])


def summarize(scores: PhotoScores, classes: tuple[str, ...], bootstrap: int = 2000) -> dict:
    """IoU per class, mean IoU, foreground IoU, pixel accuracy, category accuracy, with 95% bootstrap intervals over
    photos for the headline IoUs; `dominant` variants use the web app's one-label-per-photo rule; `true_class`
    ones (classed photos only) give every photo's predicted foreground its true class, which scores the masks alone."""
    ids = scored_ids(classes)
    conf, conf_dom, fg = scores.conf.sum(0), scores.conf_dominant.sum(0), scores.fg.sum(0)
    classed = scores.right[scores.right >= 0]
    out = {
        "images": len(scores.right),
        "mean_iou": mean_iou(conf, ids),
        "mean_iou_dominant": mean_iou(conf_dom, ids),
        "foreground_iou": _foreground(fg),
        "pixel_accuracy": pixel_accuracy(conf),
        "category_accuracy": float(classed.mean()) if classed.size else float("nan"),
        "iou_per_class": finite_dict(classes, iou_per_class(conf)),
        "iou_per_class_dominant": finite_dict(classes, iou_per_class(conf_dom)),
    }
    if (scores.label > 0).all():  # classed photos only: the masks alone, as if every photo's class were right
        conf_true = true_class_confusion(scores.fg, scores.label, len(classes))
        out["mean_iou_true_class"] = mean_iou(conf_true, ids)
        out["iou_per_class_true_class"] = finite_dict(classes, iou_per_class(conf_true))
    if bootstrap:
        out["mean_iou_ci95"] = list(bootstrap_ci(lambda c: mean_iou(c, ids), [scores.conf], n=bootstrap))
        out["foreground_iou_ci95"] = list(bootstrap_ci(_foreground, [scores.fg], n=bootstrap))
    return out


def score_model(model, size: int, items: list[Item], classes: tuple[str, ...]) -> dict:
    """IoU per class, mean IoU, foreground IoU, pixel accuracy, category accuracy over `items` at full resolution."""
    return summarize(score_photos(model, size, items, classes), classes)


def foreground_diff_ci(a: np.ndarray, b: np.ndarray, bootstrap: int = 2000) -> list[float]:
    """Paired bootstrap interval of foreground IoU a − b from per-photo 2×2 confusions of the same photos."""
    return list(bootstrap_ci(lambda x, y: _foreground(x) - _foreground(y), [a, b], n=bootstrap))


def compare(a: PhotoScores, b: PhotoScores, classes: tuple[str, ...], bootstrap: int = 2000) -> dict:
    """Paired bootstrap intervals of model a minus model b on the same photos (mean IoU and foreground IoU)."""
    ids = scored_ids(classes)
    return {
        "mean_iou_diff_ci95": list(bootstrap_ci(lambda x, y: mean_iou(x, ids) - mean_iou(y, ids),
                                                [a.conf, b.conf], n=bootstrap)),
        "foreground_iou_diff_ci95": foreground_diff_ci(a.fg, b.fg, bootstrap),
    }


def time_call(fn, inputs: list, warmup: int = 2) -> float:
    """Median seconds per call."""
    for x in inputs[:warmup]:
        fn(x)
    times = []
    for x in inputs:
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def litert_latency(path: Path, images: list[np.ndarray], threads: int = 1) -> float:
    """Median ai-edge-litert seconds per image on `threads` threads."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def run(x):
        interp.set_tensor(inp["index"], x[None])
        interp.invoke()
        return interp.get_tensor(out["index"])

    return time_call(run, images)


def file_stats(model, export_dir: Path | None, size: int, n: int, threads: int) -> dict:
    """Size and latency (seconds/image, batch 1) of each exported file type."""
    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 255, (size, size, 3)).astype(np.float32) for _ in range(n)]
    stats = {"keras_in_memory": {"latency_s": time_call(lambda x: model(x[None], training=False), images)}}
    if export_dir is None:
        return stats
    for key, name in (("keras", "roomfit_seg.keras"), ("h5", "roomfit_seg.h5"),
                      ("tflite_fp32", "roomfit_seg_fp32.tflite"), ("tflite_fp16", "roomfit_seg_fp16.tflite")):
        path = Path(export_dir) / name
        if not path.is_file():
            log.warning("%s missing: run export first for its size/latency", path)
            continue
        stats[key] = {"bytes": path.stat().st_size}
        if key.startswith("tflite"):
            stats[key]["latency_s"] = litert_latency(path, images, threads)
            stats[key]["threads"] = threads
    return stats


def teacher_stats(path: Path, items: list[Item], n: int = 5) -> dict:
    """The ISNet teacher's file size and latency; its IoU against its own labels is 1 by definition."""
    from .teacher import ISNetConfig, ISNetTeacher

    teacher = ISNetTeacher(ISNetConfig(model_path=path))
    images = [Image.open(it.image).convert("RGB") for it in items[:n]]
    return {"bytes": Path(path).stat().st_size, "latency_s": time_call(teacher.mask, images, warmup=1),
            "threads": "all (onnxruntime default)", "note": "the labels are the teacher's own masks: IoU 1 by definition"}


def evaluate(cfg: EvalConfig, items: list[Item], classes: tuple[str, ...]) -> dict:
    """Score every model on the test split, write metrics.json and the plots, return the metrics."""
    from .export import load_run_model
    from .model import mac_breakdown

    from .calibrate import LEGACY, collect_evidence, false_positive_rate, read_decision

    # The ikea collection is scored exactly as 1.x was (same photos, same blocks); the cross-shop test split and the
    # negative set get their own blocks.
    everything = items
    items = [it for it in items if it.collection == "ikea"]
    cross_shop = [it for it in everything if it.collection == "extra" and it.split == "test" and it.kind == "photo"]
    negatives = [it for it in everything if it.kind == "negative" and it.split == "test"]
    test_all = select(items, "test", classes)
    test_classed = [it for it in test_all if it.klass is not None]
    if not test_classed:
        raise ValueError("the test split has no classed products")
    out = {"split": "test", "classes": list(classes), "scored_classes": [classes[i] for i in scored_ids(classes)],
           "resolution": "full photo resolution (logits upsampled bilinear before argmax)", "models": {}}
    if cfg.refine is not None:
        out["refine"] = {**cfg.refine.as_dict(), "note": "the 'refined' blocks score foreground as the web app serves "
                                                         "it: guided-filter refinement, threshold 0.5"}
    protocols = {"plain": None, **({"refined": cfg.refine} if cfg.refine is not None else {})}
    photo_scores: dict[tuple[str, str], PhotoScores] = {}
    fg_products: dict[tuple[str, str], np.ndarray] = {}
    test_unclassed = [it for it in items if it.split == "test" and it.klass is None]
    for mut in cfg.models:
        model, run_cfg = load_run_model(mut.run_dir)
        if tuple(run_cfg["classes"]) != tuple(classes):
            raise ValueError(f"{mut.run_dir} was trained on {run_cfg['classes']}, not {list(classes)}")
        size = run_cfg["input_size"]
        entry = {"run_dir": str(mut.run_dir), "input_size": size, "decoder": run_cfg["decoder"],
                 "params": int(model.count_params()), **_macs(mac_breakdown(model)),
                 "files": file_stats(model, mut.export_dir, size, cfg.latency_images, cfg.threads)}
        for protocol, refine_cfg in protocols.items():
            log.info("scoring %s (%s) on %d classed test photos (+ %d unclassed for foreground IoU)", mut.name,
                     protocol, len(test_classed), len(test_unclassed))
            key = (mut.name, protocol)
            photo_scores[key] = score_photos(model, size, test_classed, classes, refine_cfg)
            # Foreground IoU over every test product (~400 photos, classed or not): a far tighter interval than the
            # 44 classed photos give, for the mask alone.
            fg_products[key] = np.concatenate([photo_scores[key].fg,
                                               foreground_scores(model, size, test_unclassed, classes, refine_cfg)])
            scores = {"classed": summarize(photo_scores[key], classes),
                      "products": {"images": len(fg_products[key]), "foreground_iou": _foreground(fg_products[key].sum(0)),
                                   "foreground_iou_ci95": list(bootstrap_ci(_foreground, [fg_products[key]]))}}
            if protocol == "plain":
                entry.update(scores)
            else:
                entry[protocol] = scores
        if len(test_all) > len(test_classed):
            entry["all"] = score_model(model, size, test_all, classes)
        if cross_shop:
            entry["cross_shop"] = {protocol: cross_shop_scores(model, size, cross_shop, classes, refine_cfg)
                                   for protocol, refine_cfg in protocols.items()}
        if negatives:
            decision = read_decision(mut.run_dir)
            evidence = collect_evidence(model, size, negatives, classes)
            entry["negatives"] = {"legacy_rule": false_positive_rate(evidence, LEGACY),
                                  **({"decision": decision.as_dict(),
                                      "with_decision": false_positive_rate(evidence, decision)} if decision else {})}
        history = Path(mut.run_dir) / "history.csv"
        entry["history"] = str(history) if history.exists() else None
        out["models"][mut.name] = entry
    if len(cfg.models) >= 2:  # the shipped model minus the baseline, on the same photos, under each protocol
        first, second = cfg.models[0].name, cfg.models[1].name
        for protocol in protocols:
            a, b = (first, protocol), (second, protocol)
            block = {"a": first, "b": second, **compare(photo_scores[a], photo_scores[b], classes),
                     "foreground_iou_products_diff_ci95": foreground_diff_ci(fg_products[a], fg_products[b])}
            out["comparison" if protocol == "plain" else f"comparison_{protocol}"] = block
    if cfg.refine is not None:  # what the refinement itself adds, per model (refined minus plain, same photos)
        out["refine_gain"] = {
            mut.name: {"foreground_iou_diff_ci95": foreground_diff_ci(photo_scores[(mut.name, "refined")].fg,
                                                                      photo_scores[(mut.name, "plain")].fg),
                       "foreground_iou_products_diff_ci95": foreground_diff_ci(fg_products[(mut.name, "refined")],
                                                                               fg_products[(mut.name, "plain")])}
            for mut in cfg.models}
    if cfg.teacher_model is not None and Path(cfg.teacher_model).is_file():
        out["teacher"] = teacher_stats(cfg.teacher_model, test_classed)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cfg.out_dir / "metrics.json", out)
    plot_all(out, classes, cfg.out_dir)
    return out


def _macs(parts: dict[str, int]) -> dict:
    """metrics.json's MAC fields: the total and the encoder / decoder split."""
    return {"macs": sum(parts.values()), "macs_encoder": parts["encoder"], "macs_decoder": parts["decoder"]}


def _round4(value: float | list[float]) -> float | list[float]:
    """A metric or an interval rounded to 4 decimals for model.json."""
    return [round(v, 4) for v in value] if isinstance(value, list) else round(value, 4)


def headline(metrics: dict, name: str) -> dict:
    """The numbers model.json carries for one evaluated model."""
    m = metrics["models"][name]
    c = m["classed"]
    head = {"split": "test", "test_images_classed": c["images"], "test_mean_iou": round(c["mean_iou"], 4),
            "test_mean_iou_dominant": round(c["mean_iou_dominant"], 4),
            "test_foreground_iou": round(c["foreground_iou"], 4), "test_pixel_accuracy": round(c["pixel_accuracy"], 4),
            "test_category_accuracy": round(c["category_accuracy"], 4), "test_iou_per_class": c["iou_per_class"],
            "macs": m["macs"], "params": m["params"]}
    if "mean_iou_true_class" in c:  # absent from metrics.json files written before it existed
        head["test_mean_iou_true_class"] = round(c["mean_iou_true_class"], 4)
    for key in ("mean_iou_ci95", "foreground_iou_ci95"):  # 95% bootstrap intervals over the test photos
        if key in c:
            head[f"test_{key}"] = [round(v, 4) for v in c[key]]
    if "products" in m:  # every test product photo, classed or not
        head["test_images_products"] = m["products"]["images"]
        head["test_foreground_iou_products"] = round(m["products"]["foreground_iou"], 4)
        head["test_foreground_iou_products_ci95"] = [round(v, 4) for v in m["products"]["foreground_iou_ci95"]]
    if "all" in m:
        head["test_images_all"] = m["all"]["images"]
        head["test_mean_iou_all"] = round(m["all"]["mean_iou"], 4)
        head["test_foreground_iou_all"] = round(m["all"]["foreground_iou"], 4)
    if "refined" in m:  # the served pipeline: foreground from model.json's `refine`
        c, p = m["refined"]["classed"], m["refined"]["products"]
        head["test_refined"] = {key: _round4(value) for key, value in (
            ("mean_iou", c["mean_iou"]), ("mean_iou_ci95", c["mean_iou_ci95"]),
            ("foreground_iou", c["foreground_iou"]), ("foreground_iou_ci95", c["foreground_iou_ci95"]),
            ("category_accuracy", c["category_accuracy"]), ("foreground_iou_products", p["foreground_iou"]),
            ("foreground_iou_products_ci95", p["foreground_iou_ci95"]))}
        if "mean_iou_true_class" in c:
            head["test_refined"]["mean_iou_true_class"] = round(c["mean_iou_true_class"], 4)
    if "cross_shop" in m:  # model 2.0: other shops' photos, by background (served protocol when there is one)
        served = m["cross_shop"].get("refined", m["cross_shop"]["plain"])
        head["test_cross_shop"] = {group: {k: _round4(v) for k, v in block.items()} for group, block in served.items()}
    if "negatives" in m:
        head["test_negatives"] = m["negatives"].get("with_decision", m["negatives"]["legacy_rule"])
    fp16 = m["files"].get("tflite_fp16")
    if fp16:
        head["tflite_fp16_latency_ms_1thread"] = round(fp16["latency_s"] * 1000, 2)
    return head


def plot_all(metrics: dict, classes: tuple[str, ...], out_dir: Path) -> None:
    """IoU per class, IoU vs latency and learning curves as PNGs in out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(metrics["models"])
    scored = metrics["scored_classes"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        ious = metrics["models"][name]["classed"]["iou_per_class"]
        ax.bar(np.arange(len(scored)) + k * width, [ious[c] or 0 for c in scored], width, label=name)
    ax.set_xticks(np.arange(len(scored)) + width * (len(names) - 1) / 2, scored, rotation=30)
    ax.set_ylabel("test IoU (full resolution)")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "iou_per_class.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    for name in names:
        m = metrics["models"][name]
        timed = [(key, stat) for key, stat in m["files"].items() if "latency_s" in stat]
        for k, (key, stat) in enumerate(timed):
            xy = (stat["latency_s"] * 1000, m["classed"]["mean_iou"])
            ax.scatter(*xy)
            # Points of one model share an IoU and often a latency: stack their labels instead of overprinting.
            ax.annotate(f"{name} {key}", xy, xytext=(4, 9 * k - 9), textcoords="offset points", fontsize=7)
    if "teacher" in metrics:
        t = metrics["teacher"]
        ax.scatter(t["latency_s"] * 1000, 1.0, marker="*")
        ax.annotate("teacher (ISNet, reference)", (t["latency_s"] * 1000, 1.0), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("latency per image, ms (log)")
    ax.set_ylabel("test mean IoU (9 classes)")
    fig.tight_layout()
    fig.savefig(out_dir / "iou_vs_latency.png", dpi=90)
    plt.close(fig)

    import csv

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name in names:
        hist = metrics["models"][name].get("history")
        if not hist:
            continue
        with open(hist, encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        x = np.arange(1, len(rows) + 1)
        axes[0].plot(x, [float(r["loss"]) for r in rows], label=f"{name} train")
        axes[0].plot(x, [float(r["val_loss"]) for r in rows], "--", label=f"{name} val")
        axes[1].plot(x, [float(r["val_mean_iou"]) for r in rows], label=name)
    axes[0].set_title("loss")
    axes[1].set_title("val mean IoU")
    for a in axes:
        a.set_xlabel("epoch")
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "learning_curves.png", dpi=90)
    plt.close(fig)
    log.info("plots in %s", out_dir)


def read_metrics(path: Path) -> dict:
    """Load a metrics.json written by `evaluate`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"metrics not found: {path} (run `python -m training evaluate`)")
    return json.loads(Path(path).read_text(encoding="utf-8"))
