"""Training loss: class-weighted cross-entropy plus soft Dice, for heavily imbalanced masks (mostly background)."""
from __future__ import annotations

import numpy as np


def class_weights(pixel_counts: np.ndarray, max_weight: float = 10.0, power: float = 0.5) -> np.ndarray:
    """Median-frequency balancing weights to `power` (0.5 damps them, so background is not almost ignored and the
    model does not over-grow foreground), clipped to `max_weight`; classes with no pixels get 0."""
    counts = np.asarray(pixel_counts, dtype=np.float64)
    freq = counts / max(counts.sum(), 1.0)
    present = freq > 0
    if not present.any():
        raise ValueError("no labelled pixels to weight")
    w = np.zeros_like(freq)
    w[present] = (np.median(freq[present]) / freq[present]) ** power
    return np.clip(w, 0.0, max_weight).astype(np.float32)


def make_loss(weights: np.ndarray, dice_weight: float = 1.0):
    """A Keras loss(y_true int N×H×W×1, logits N×H×W×C) = weighted CE + dice_weight × (1 − soft Dice)."""
    from keras import ops

    w = np.asarray(weights, dtype=np.float32)
    num_classes = len(w)

    def weighted_ce_dice(y_true, logits):
        labels = ops.cast(ops.squeeze(y_true, -1), "int32")
        onehot = ops.one_hot(labels, num_classes)
        logp = ops.log_softmax(logits, axis=-1)
        pix_w = ops.sum(onehot * w, axis=-1)
        ce = -ops.sum(onehot * logp, axis=-1) * pix_w
        ce = ops.sum(ce) / ops.maximum(ops.sum(pix_w), 1e-6)
        prob = ops.exp(logp)
        inter = ops.sum(prob * onehot, axis=(0, 1, 2))
        denom = ops.sum(prob + onehot, axis=(0, 1, 2))
        present = ops.cast(ops.sum(onehot, axis=(0, 1, 2)) > 0, "float32")
        dice = (2.0 * inter + 1.0) / (denom + 1.0)
        dice = ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)
        return ce + dice_weight * (1.0 - dice)

    return weighted_ce_dice
