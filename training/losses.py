"""Training loss: class-weighted cross-entropy plus soft Dice, for heavily imbalanced masks (mostly background)."""
from __future__ import annotations

import numpy as np

from .label import UNCLASSED


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


def make_loss(weights: np.ndarray, dice_weight: float = 1.0, unclassed_weight: float | None = None,
              image_class_weight: float = 0.0, image_weights: np.ndarray | None = None, soft_fg_weight: float = 0.0):
    """A Keras loss(y_true N×H×W×1 class ids, or N×H×W×2 class ids + teacher alpha; logits N×H×W×C) = weighted CE
    + dice_weight × (1 − soft Dice) + image_class_weight × image-level class CE
    + soft_fg_weight × binary CE of the foreground probability against the teacher's soft alpha.

    Pixels labelled 255 (foreground of an unclassed product) are partial labels: their CE term is −log(1 − p_bg)
    (any foreground class will do), weighted `unclassed_weight` (default: the mean weight of the foreground classes
    present), and they stay out of the Dice, so they train the fg/bg decision without pulling on the class competition.
    """
    from keras import ops

    w = np.asarray(weights, dtype=np.float32)
    num_classes = len(w)
    fg_w = w[1:][w[1:] > 0]  # classes absent from the training masks (weight 0) say nothing about foreground
    if unclassed_weight is None and not fg_w.size:
        raise ValueError("no foreground class weight to give unclassed pixels")
    w_unclassed = float(np.mean(fg_w)) if unclassed_weight is None else float(unclassed_weight)
    w_image = np.ones(num_classes, np.float32) if image_weights is None else np.asarray(image_weights, np.float32)
    if w_image.shape != (num_classes,):
        raise ValueError(f"image_weights needs {num_classes} entries, got {w_image.shape}")

    def weighted_ce_dice(y_true, logits):
        labels = ops.cast(y_true[..., 0], "int32")
        is_unclassed = ops.equal(labels, UNCLASSED)
        unclassed = ops.cast(is_unclassed, "float32")
        classed = 1.0 - unclassed
        # 255 is outside one_hot's range (all-zero row); mapping it to 0 and masking says so explicitly.
        onehot = ops.one_hot(ops.where(is_unclassed, 0, labels), num_classes) * classed[..., None]
        logp = ops.log_softmax(logits, axis=-1)
        pix_w = ops.sum(onehot * w, axis=-1)
        ce = -ops.sum(onehot * logp, axis=-1) * pix_w
        # log(1 − p_bg) = logsumexp of the foreground log-probabilities: stable even when p_bg → 1.
        ce_unclassed = -ops.logsumexp(logp[..., 1:], axis=-1) * unclassed * w_unclassed
        ce = (ops.sum(ce) + ops.sum(ce_unclassed)) / ops.maximum(ops.sum(pix_w) + ops.sum(unclassed) * w_unclassed,
                                                                  1e-6)
        prob = ops.exp(logp) * classed[..., None]
        inter = ops.sum(prob * onehot, axis=(0, 1, 2))
        denom = ops.sum(prob + onehot, axis=(0, 1, 2))
        present = ops.cast(ops.sum(onehot, axis=(0, 1, 2)) > 0, "float32")
        dice = (2.0 * inter + 1.0) / (denom + 1.0)
        dice = ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)
        loss = ce + dice_weight * (1.0 - dice)
        if image_class_weight > 0:
            fg_counts = ops.sum(onehot[..., 1:], axis=(1, 2))  # N×(C−1) labelled pixels per foreground class
            has_class = ops.cast(ops.sum(fg_counts, axis=-1) > 0, "float32")
            target = ops.one_hot(ops.argmax(fg_counts, axis=-1), num_classes - 1)
            image_logp = ops.log_softmax(ops.mean(logits[..., 1:], axis=(1, 2)), axis=-1)
            image_ce = -ops.sum(target * image_logp, axis=-1) * ops.sum(target * w_image[1:], axis=-1)
            loss = loss + image_class_weight * ops.sum(image_ce * has_class) / ops.maximum(ops.sum(has_class), 1.0)
        if soft_fg_weight > 0 and y_true.shape[-1] == 2:  # static: validation batches carry no alpha
            alpha = ops.cast(y_true[..., 1], "float32")
            log_fg = ops.logsumexp(logp[..., 1:], axis=-1)  # log(1 − p_bg), stable as above
            soft = -(alpha * log_fg + (1.0 - alpha) * logp[..., 0])
            loss = loss + soft_fg_weight * ops.mean(soft)
        return loss

    return weighted_ce_dice
