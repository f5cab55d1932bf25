"""Linear probe: how well a linear classifier on the frozen encoder's pooled features tells the product classes apart,
cross-validated on the train + val photos (never test); and the foreground IoU a mask at a given resolution could
reach at best.

The fast model decides a photo's class with a dense layer on the global average of one encoder tap, and fine-tuning
the encoder over-fits ~200 classed photos, so this is the ceiling its class decision works under: if the probe is
no better than the model, the class IoU is limited by the photos, not by the head or its training.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import Item
from .export import load_resized
from .metrics import balanced_accuracy, confusion_matrix, foreground_confusion, iou_per_class
from .model import FAST_CLASS, ModelConfig, build_encoder

log = logging.getLogger(__name__)


@dataclass
class ProbeConfig:
    """What `run_probe` measures."""

    encoder_weights: str | Path | None
    input_size: int = 160
    taps: tuple[str, ...] = (FAST_CLASS,)
    folds: int = 5
    repeats: int = 3
    steps: int = 1500  # Adam steps of batch 64 per fit, whatever the number of photos
    dropout: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.folds < 2 or self.repeats < 1 or self.steps < 1:
            raise ValueError(f"need at least 2 folds, 1 repeat and 1 step (got {self.folds}, {self.repeats}, "
                             f"{self.steps})")


def stratified_folds(labels: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """A fold id per item: each class's items shuffled and dealt round-robin, so every fold gets its share of every
    class (a class with fewer items than folds is absent from some folds)."""
    if folds < 2:
        raise ValueError("need at least 2 folds")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    start = 0  # continue dealing where the last class stopped, so small classes do not all land in fold 0
    for c in sorted(set(labels.tolist())):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = (start + np.arange(len(idx))) % folds
        start = (start + len(idx)) % folds
    return fold


def pooled_features(items: Sequence[Item], cfg: ProbeConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per tap: global-average features of each photo and of its mirror image (the training augmentation)."""
    import keras
    from tqdm import tqdm

    encoder = build_encoder(ModelConfig(input_size=cfg.input_size, encoder_weights=cfg.encoder_weights), cfg.taps)
    out: dict[str, tuple[list, list]] = {t: ([], []) for t in cfg.taps}
    batch = 32
    for start in tqdm(range(0, len(items), batch), desc="features", unit="batch"):
        images = np.stack([load_resized(it.image, cfg.input_size) for it in items[start:start + batch]])
        for k, x in enumerate((images, images[:, :, ::-1])):
            feats = encoder(keras.applications.mobilenet_v2.preprocess_input(x.copy()), training=False)
            feats = feats if isinstance(feats, (list, tuple)) else [feats]
            for tap, f in zip(cfg.taps, feats):
                out[tap][k].append(np.asarray(f).mean(axis=(1, 2)))
    return {t: (np.concatenate(o), np.concatenate(f)) for t, (o, f) in out.items()}


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, num_classes: int, steps: int,
                dropout: float, seed: int) -> np.ndarray:
    """Train a softmax classifier (dropout + dense, class-balanced weights, standardised inputs); predict x_test."""
    import math

    import keras

    keras.utils.set_random_seed(seed)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    counts = np.bincount(y_train, minlength=num_classes)
    # every class counts as much as any other in training, as it does in the mean IoU
    weights = (len(y_train) / (num_classes * np.maximum(counts, 1)))[y_train]
    inputs = keras.Input((x_train.shape[1],))
    logits = keras.layers.Dense(num_classes)(keras.layers.Dropout(dropout)(inputs))
    model = keras.Model(inputs, logits)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batch = 64
    model.fit((x_train - mu) / sd, y_train, sample_weight=weights, batch_size=batch, verbose=0,
              epochs=max(1, round(steps / math.ceil(len(y_train) / batch))))
    return np.asarray(model((x_test - mu) / sd, training=False)).argmax(-1)  # one call: no predict() retracing


def cross_validate(original: np.ndarray, mirrored: np.ndarray, labels: np.ndarray, num_classes: int,
                   cfg: ProbeConfig) -> np.ndarray:
    """Summed confusion matrix of `repeats` × `folds`-fold cross-validation: train on a fold's complement (photos
    and their mirror images), predict the held-out photos as they are."""
    from tqdm import tqdm

    conf = np.zeros((num_classes, num_classes), np.int64)
    with tqdm(total=cfg.repeats * cfg.folds, desc="cross-validation", unit="fit") as progress:
        for r in range(cfg.repeats):
            fold = stratified_folds(labels, cfg.folds, cfg.seed + r)
            for k in range(cfg.folds):
                test, train = fold == k, fold != k
                if test.any():
                    x = np.concatenate([original[train], mirrored[train]])
                    y = np.concatenate([labels[train], labels[train]])
                    pred = fit_predict(x, y, original[test], num_classes, cfg.steps, cfg.dropout, cfg.seed + r)
                    conf += confusion_matrix(labels[test], pred, num_classes)
                progress.update()
    return conf


def run_probe(cfg: ProbeConfig, items: Sequence[Item], classes: tuple[str, ...]) -> dict:
    """Cross-validated accuracy, balanced accuracy and confusion of the linear probe on the train + val classed
    photos, per tap."""
    chosen = [it for it in items if it.split in ("train", "val") and it.klass in classes[1:]]
    if len(chosen) < cfg.folds:
        raise ValueError(f"only {len(chosen)} classed train/val photos: too few for {cfg.folds} folds")
    fg = classes[1:]  # background is never a photo's class
    labels = np.array([fg.index(it.klass) for it in chosen])
    log.info("linear probe on %d classed train/val photos, %d taps", len(chosen), len(cfg.taps))
    result = {"photos": len(chosen), "input_size": cfg.input_size, "folds": cfg.folds, "repeats": cfg.repeats,
              "classes": list(fg), "taps": {}}
    for tap, (original, mirrored) in pooled_features(chosen, cfg).items():
        conf = cross_validate(original, mirrored, labels, len(fg), cfg)
        result["taps"][tap] = {"accuracy": float(np.trace(conf) / conf.sum()),
                               "balanced_accuracy": balanced_accuracy(conf), "confusion": conf.tolist()}
    return result


def resolution_ceiling(items: Sequence[Item], sizes: Sequence[int]) -> dict[int, float]:
    """Foreground IoU against the labels of a perfect s×s prediction: the teacher's own alpha box-downsampled to s×s,
    upsampled bilinear to the photo and thresholded at 0.5, as the model's logits are. What a model at that size
    loses beyond this is the model's, not the resolution's."""
    from PIL import Image

    conf = {s: np.zeros((2, 2), np.int64) for s in sizes}
    for it in items:
        with Image.open(it.mask) as m:
            truth = np.asarray(m) > 0
        with Image.open(it.alpha) as a:
            alpha = a.convert("L")
            for s in sizes:
                up = np.asarray(alpha.resize((s, s), Image.BOX).resize(alpha.size, Image.BILINEAR)) > 127
                conf[s] += foreground_confusion(truth, up)
    return {s: float(iou_per_class(c)[1]) for s, c in conf.items()}
