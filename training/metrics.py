"""Segmentation metrics in plain numpy (confusion matrix, IoU per class, mean IoU, foreground IoU, accuracy)."""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """num_classes × num_classes counts, rows = truth, columns = prediction (int64)."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"truth and prediction differ in size: {t.shape} vs {p.shape}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_classes):
        raise ValueError(f"class ids must be in [0, {num_classes})")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU of each class; NaN for a class absent from both truth and prediction."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(conf: np.ndarray, class_ids: list[int] | None = None) -> float:
    """Mean IoU over `class_ids` (default all), ignoring classes absent from both truth and prediction."""
    ious = iou_per_class(conf)
    if class_ids is not None:
        ious = ious[list(class_ids)]
    return float(np.nanmean(ious)) if np.any(~np.isnan(ious)) else float("nan")


def foreground_iou(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """IoU of foreground (any class ≠ 0) vs background; NaN when both are empty."""
    t = np.asarray(y_true) != 0
    p = np.asarray(y_pred) != 0
    union = np.logical_or(t, p).sum()
    return float(np.logical_and(t, p).sum() / union) if union else float("nan")


def foreground_confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """2×2 confusion of background/foreground, to accumulate foreground IoU over many images."""
    return confusion_matrix(np.asarray(y_true) != 0, np.asarray(y_pred) != 0, 2)


def true_class_confusion(fg: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The class confusion the predicted masks would give if every photo's foreground took the photo's true class:
    per-photo 2×2 background/foreground confusions (photos, 2, 2) and class ids (photos,) in, (classes, classes) out.
    Its mean IoU measures the masks alone; the gap to the real one is what the class decision costs."""
    fg = np.asarray(fg, dtype=np.int64).reshape(-1, 2, 2)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(fg) or (labels < 1).any() or (labels >= num_classes).any():
        raise ValueError("need one product class id (1..classes-1) per photo")
    conf = np.zeros((num_classes, num_classes), np.int64)
    conf[0, 0] = fg[:, 0, 0].sum()
    np.add.at(conf, (0, labels), fg[:, 0, 1])  # background called foreground lands in the photo's class column
    np.add.at(conf, (labels, 0), fg[:, 1, 0])
    np.add.at(conf, (labels, labels), fg[:, 1, 1])
    return conf


def pixel_accuracy(conf: np.ndarray) -> float:
    """Fraction of pixels whose predicted class is right."""
    conf = np.asarray(conf)
    total = conf.sum()
    return float(np.trace(conf) / total) if total else float("nan")


def balanced_accuracy(conf: np.ndarray) -> float:
    """Mean recall over the classes present in the truth (rows of a confusion matrix): every class counts alike."""
    conf = np.asarray(conf, dtype=np.float64)
    support = conf.sum(1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(conf)[present] / support[present]))


def dominant_class(pred: np.ndarray, num_classes: int, other: int | None = None) -> int:
    """The product label of a predicted mask: the most frequent foreground class; `other` only if nothing else is
    present; 0 when there is no foreground (the web app's rule in DEVELOPERS.md)."""
    counts = np.bincount(np.asarray(pred, dtype=np.int64).ravel(), minlength=num_classes)
    counts[0] = 0
    if other is not None and counts.sum() > counts[other]:
        counts[other] = 0
    return int(counts.argmax()) if counts.sum() else 0


def bootstrap_ci(statistic, samples: list[np.ndarray], n: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(*sums)` over photos resampled with replacement.

    `samples` holds per-photo arrays (photos on axis 0, e.g. one confusion matrix each), all resampled with the same
    indices so that a difference between two models on the same photos is a paired comparison. With 44 test photos
    one rare-class photo moves the 9-class mean IoU by ~0.1; the interval says how far apart two numbers must be."""
    arrays = [np.asarray(s) for s in samples]
    count = len(arrays[0])
    if count == 0 or any(len(a) != count for a in arrays):
        raise ValueError("bootstrap needs the same non-zero number of photos in every sample")
    rng = np.random.default_rng(seed)
    stats = np.array([statistic(*(a[idx].sum(0) for a in arrays))
                      for idx in rng.integers(0, count, size=(n, count))], dtype=np.float64)
    stats = stats[~np.isnan(stats)]
    if not stats.size:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return float(lo), float(hi)
