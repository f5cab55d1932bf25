"""Score a shipped models folder exactly as `/predict` serves it: the photo's bytes through core's decoding, the
TFLite file in ai-edge-litert, model.json's refinement and `decision`, the web app's threshold and minimum area.

Any models folder can be scored on the same photos (1.4.1 from git and 2.0 side by side), which the Keras-based
`training evaluate` cannot do for a model whose training run is gone. Reports per test block (ikea, cross-shop
overall / scene / plain / white) foreground IoU and category accuracy with 95% bootstrap intervals, and the negative
set's share of images given a product (Wilson interval)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.cutout import DecodeLimits, decode_for
from core.decision import UNKNOWN
from core.segment import ModelSpec, Segmenter

from .calibrate import summarize_groups, wilson_interval
from .dataset import UNCLASSED, Item
from .metrics import foreground_confusion

log = logging.getLogger(__name__)


@dataclass
class ServedSettings:
    """The web app's serving settings (webapp.config.Config defaults)."""

    threshold: float = 0.5
    min_area: float = 0.005
    refine_max_side: int = 1024


@dataclass
class ServedAnswer:
    """What /predict answered for one photo."""

    label: str | None  # None: no product; "unknown": a product of uncertain class
    guess: str | None  # the dominant class, also when uncertain
    fg: np.ndarray  # 2×2 background/foreground pixel confusion against the reference mask (zeros for negatives)


def build_segmenter(model_dir: Path, settings: ServedSettings = ServedSettings()) -> Segmenter:
    """The served session for a models folder."""
    return Segmenter(ModelSpec.load(model_dir), num_threads=1, pool_size=1, threshold=settings.threshold,
                     min_area=settings.min_area, refine_max_side=settings.refine_max_side)


def answer(seg: Segmenter, item: Item) -> ServedAnswer:
    """Run one photo through the served path and compare its mask with the reference (product pixels: any class,
    unclassed included)."""
    decoded = decode_for(seg, Path(item.image).read_bytes(), DecodeLimits(), need_full=False)
    pred = seg.predict(decoded.model_input, decoded.size, decoded.guide)
    det = pred.detections[0] if pred.detections else None
    fg = np.zeros((2, 2), np.int64)
    if item.kind != "negative":
        truth = np.asarray(Image.open(item.mask))
        truth = ((truth > 0) & (truth <= UNCLASSED)).astype(np.uint8)
        mask = pred.mask
        if mask.size != (truth.shape[1], truth.shape[0]):  # a photo decoded at a reduced size (huge uploads only)
            mask = mask.resize((truth.shape[1], truth.shape[0]), Image.BILINEAR)
        fg = foreground_confusion(truth, (np.asarray(mask) >= 128).astype(np.uint8))
    return ServedAnswer(det.label if det else None, (det.guess or det.label) if det else None, fg)


def score_block(answers: list[ServedAnswer], items: list[Item], keys: list[str]) -> dict:
    """Foreground IoU and category accuracy per group; an "unknown" or missing label counts as wrong."""
    right = np.array([-1 if it.klass is None else int(a.label == it.klass) for a, it in zip(answers, items)])
    out = summarize_groups(np.array([a.fg for a in answers]).reshape(-1, 2, 2), right, keys)
    for name in out:
        sel = [i for i, k in enumerate(keys) if name == "overall" or k == name]
        classed = [i for i in sel if items[i].klass is not None]
        named = [i for i in classed if answers[i].label not in (None, UNKNOWN)]
        out[name]["labelled_share"] = len(named) / len(classed) if classed else float("nan")
        out[name]["accuracy_when_labelled"] = (sum(answers[i].label == items[i].klass for i in named) / len(named)
                                               if named else float("nan"))
        out[name]["guess_accuracy"] = (sum(answers[i].guess == items[i].klass for i in classed) / len(classed)
                                       if classed else float("nan"))
        out[name]["no_product"] = sum(answers[i].label is None for i in sel)
    return out


def served_evaluation(model_dir: Path, items: list[Item], settings: ServedSettings = ServedSettings()) -> dict:
    """Score the test split of a dataset through the served path: ikea, cross-shop by background, negatives."""
    seg = build_segmenter(model_dir, settings)
    test = [it for it in items if it.split == "test"]
    blocks = {
        "ikea": [it for it in test if it.kind == "photo" and it.collection == "ikea"],
        "cross_shop": [it for it in test if it.kind == "photo" and it.collection == "extra"],
        "negatives": [it for it in test if it.kind == "negative"],
    }
    out: dict = {"model": {"name": seg.spec.name, "version": seg.spec.version, "dir": str(model_dir)}}
    answers: dict[str, list[ServedAnswer]] = {}
    for name, block in blocks.items():
        answers[name] = [answer(seg, it) for it in tqdm(block, desc=f"served {name}", unit="img", leave=False)]
    ikea_classed = [(a, it) for a, it in zip(answers["ikea"], blocks["ikea"]) if it.klass is not None]
    out["ikea"] = score_block([a for a, _ in ikea_classed], [it for _, it in ikea_classed],
                              ["classed"] * len(ikea_classed))["overall"]
    out["ikea_products"] = score_block(answers["ikea"], blocks["ikea"], ["all"] * len(blocks["ikea"]))["overall"]
    out["cross_shop"] = score_block(answers["cross_shop"], blocks["cross_shop"],
                                    [it.background or "unknown" for it in blocks["cross_shop"]])
    both = ikea_classed + [(a, it) for a, it in zip(answers["cross_shop"], blocks["cross_shop"])
                           if it.klass is not None]
    out["category_both"] = score_block([a for a, _ in both], [it for _, it in both], ["all"] * len(both))["overall"]
    hits = sum(a.label is not None for a in answers["negatives"])
    n = len(answers["negatives"])
    out["negatives"] = {"images": n, "with_product": hits, "false_positive_rate": hits / n if n else float("nan"),
                        "false_positive_rate_ci95": list(wilson_interval(hits, n)) if n else None}
    return out
