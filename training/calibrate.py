"""Model 2.0's image-level decision: "is there a product" and "is its class certain" thresholds chosen on validation
(model.json's `decision`, applied by the web app through core.decision), the negative set's false-positive rate, and
the per-group (cross-shop scenes / plain / white) summaries evaluate reports."""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.decision import Decision, product_evidence

from .dataset import OTHER, Item
from .io import atomic_write_json, model_input, open_upright
from .metrics import bootstrap_ci, dominant_class, iou_per_class

log = logging.getLogger(__name__)

# 1.x had no decision: any labelled foreground of at least 0.5% of the photo was a product (webapp MIN_AREA).
LEGACY = Decision(min_area=0.005)


@dataclass
class Evidence:
    """What the decision looks at on one image (model resolution), and the truth."""

    area: float
    product_score: float
    class_score: float
    label: int  # dominant predicted class (0: no foreground)
    truth: int  # the photo's class id; 0 for a negative; -1 for an unclassed product


def image_evidence(probs: np.ndarray, classes: tuple[str, ...], truth: int) -> Evidence:
    """Evidence from a softmax map (h, w, classes), computed as the web app computes it (core.segment)."""
    fg = 1.0 - probs[..., 0]
    area, product_score = product_evidence(fg)
    pred = probs.argmax(-1)
    label = dominant_class(pred, len(classes), classes.index(OTHER) if OTHER in classes else None)
    winners = pred == label
    class_score = float(probs[..., label][winners].mean()) if label and winners.any() else 0.0
    return Evidence(area, product_score, class_score, label, truth)


def collect_evidence(model, size: int, items: list[Item], classes: tuple[str, ...]) -> list[Evidence]:
    """Run a Keras model on each item's photo at the model's input size."""
    import tensorflow as tf

    out = []
    for item in tqdm(items, desc="evidence", unit="img", leave=False):
        x = model_input(open_upright(item.image), size)[None]
        probs = tf.nn.softmax(model(x, training=False)[0], axis=-1).numpy()
        truth = 0 if item.kind == "negative" else (classes.index(item.klass) if item.klass in classes else -1)
        out.append(image_evidence(probs, classes, truth))
    return out


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sensible at 0 or n hits, unlike the normal approximation)."""
    if n == 0:
        return float("nan"), float("nan")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def false_positive_rate(negatives: list[Evidence], decision: Decision | None) -> dict:
    """Share of no-product images that get a product (1.x rule without a decision), with its Wilson interval."""
    decision = decision or LEGACY
    hits = sum(e.label != 0 and decision.has_product(e.area, e.product_score) for e in negatives)
    return {"images": len(negatives), "with_product": hits,
            "false_positive_rate": hits / len(negatives) if negatives else float("nan"),
            "false_positive_rate_ci95": list(wilson_interval(hits, len(negatives)))}


def choose_decision(products: list[Evidence], negatives: list[Evidence], max_fpr: float = 0.03,
                    min_precision: float = 0.95) -> tuple[Decision, dict]:
    """Thresholds from validation: the (min_area, min_score) that keep the most product photos while letting at most
    `max_fpr` of the negatives through (the least leaky pair if none does), then the lowest class threshold at which
    the labelled products' class is right at least `min_precision` of the time. Returns the decision and what it
    does on validation."""
    if not products or not negatives:
        raise ValueError("choosing a decision needs validation product photos and validation negatives")
    pa = np.array([e.area for e in products])
    ps = np.array([e.product_score for e in products])
    na = np.array([e.area for e in negatives])
    ns = np.array([e.product_score for e in negatives])
    found_p = np.array([e.label != 0 for e in products])
    found_n = np.array([e.label != 0 for e in negatives])
    # Candidates: 0 and the negatives' own values (a threshold just above a negative's value rejects it).
    areas = np.unique(np.concatenate([[0.0, LEGACY.min_area], np.nextafter(na, 1.0)]))
    scores = np.unique(np.concatenate([[0.0], np.nextafter(ns, 1.0)]))
    best = None
    for a in areas:
        keep_n = found_n & (na >= a)
        keep_p = found_p & (pa >= a)
        for s in scores:
            fpr = float((keep_n & (ns >= s)).mean())
            recall = float((keep_p & (ps >= s)).mean())
            key = (fpr <= max_fpr, recall if fpr <= max_fpr else -fpr, -a, -s)
            if best is None or key > best[0]:
                best = (key, float(a), float(s), fpr, recall)
    _, min_area, min_score, fpr, recall = best
    kept = [e for e in products if e.label != 0 and e.area >= min_area and e.product_score >= min_score and e.truth > 0]
    class_threshold, precision, coverage = 0.0, float("nan"), float("nan")
    if kept:
        cs = np.array([e.class_score for e in kept])
        right = np.array([e.label == e.truth for e in kept])
        for t in np.unique(np.concatenate([[0.0], cs])):  # ascending: the lowest threshold that is precise enough
            chosen = cs >= t
            if chosen.any() and right[chosen].mean() >= min_precision:
                class_threshold, precision, coverage = float(t), float(right[chosen].mean()), float(chosen.mean())
                break
        else:  # never precise enough: label nothing rather than guess (every class is reported uncertain)
            class_threshold, precision, coverage = 1.0, float("nan"), 0.0
    decision = Decision(min_area=min_area, min_score=min_score, class_threshold=class_threshold)
    report = {"decision": decision.as_dict(), "val_products": len(products), "val_negatives": len(negatives),
              "val_product_recall": recall, "val_false_positive_rate": fpr, "val_label_precision": precision,
              "val_label_coverage": coverage, "max_fpr": max_fpr, "min_precision": min_precision}
    return decision, report


def summarize_groups(fg: np.ndarray, right: np.ndarray, keys: list[str], bootstrap: int = 2000) -> dict:
    """Foreground IoU and category accuracy per group of photos (plus `overall`), with 95% bootstrap intervals.

    fg: per-photo 2×2 background/foreground confusions (photos, 2, 2); right: 1 / 0 when the photo's product label is
    / is not its class, -1 when it has no class; keys: each photo's group (e.g. its background)."""
    fg = np.asarray(fg).reshape(-1, 2, 2)
    right = np.asarray(right)
    if not (len(fg) == len(right) == len(keys)):
        raise ValueError("need one confusion, one label verdict and one key per photo")
    groups = {"overall": np.ones(len(keys), bool)}
    for key in sorted(set(keys)):
        groups[key] = np.array([k == key for k in keys])
    out = {}

    def foreground(c: np.ndarray) -> float:
        return float(iou_per_class(c)[1])

    for name, sel in groups.items():
        if not sel.any():
            continue
        r = right[sel]
        classed = r[r >= 0].astype(np.float64)
        entry = {"images": int(sel.sum()), "foreground_iou": foreground(fg[sel].sum(0)),
                 "category_accuracy": float(classed.mean()) if classed.size else float("nan"),
                 "classed_images": int(classed.size)}
        if bootstrap:
            entry["foreground_iou_ci95"] = list(bootstrap_ci(foreground, [fg[sel]], n=bootstrap))
            if classed.size:  # bootstrap_ci hands the statistic sums over a resample: right photos / photos
                ones = np.ones_like(classed)
                entry["category_accuracy_ci95"] = list(bootstrap_ci(lambda hits, n: float(hits / n), [classed, ones],
                                                                    n=bootstrap))
        out[name] = entry
    return out


def write_decision(run_dir: Path, decision: Decision, report: dict) -> Path:
    """Save the chosen decision beside a run's weights (export copies it into model.json)."""
    path = Path(run_dir) / "decision.json"
    atomic_write_json(path, {**report, "decision": decision.as_dict()})
    return path


def read_decision(run_dir: Path) -> Decision | None:
    """A run's chosen decision, or None when `calibrate` has not been run."""
    import json

    path = Path(run_dir) / "decision.json"
    if not path.is_file():
        return None
    return Decision.from_dict(json.loads(path.read_text(encoding="utf-8"))["decision"])


def evidence_rows(evidence: list[Evidence]) -> list[dict]:
    """Evidence as JSON rows (for the calibration report)."""
    return [asdict(e) for e in evidence]
