"""Hyper-parameter sweep: every trial is a real (short) training run with its own optimiser, learning rate, alpha, input
size and decoder, scored on the validation split; results go to TensorBoard HParams and a CSV table."""
from __future__ import annotations

import csv
import io
import itertools
import logging
import random
from dataclasses import replace
from pathlib import Path

from .dataset import Item
from .io import atomic_write_bytes
from .train import TrainConfig, train

log = logging.getLogger(__name__)

DEFAULT_SPACE: dict[str, list] = {
    "optimizer": ["adam", "sgd"],
    "lr": [1e-3, 3e-3],
    "alpha": [1.0],
    "input_size": [128, 160],
    "decoder": ["fast"],
}
COLUMNS = ("trial", "optimizer", "lr", "alpha", "input_size", "decoder", "encoder_weights", "val_mean_iou",
           "val_fg_iou", "epochs", "seconds")


def grid(space: dict[str, list]) -> list[dict]:
    """Every combination of the values in `space` (dict order fixes the trial order)."""
    keys = list(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def trial_name(params: dict) -> str:
    """A readable, file-safe run name for one trial."""
    return "_".join(f"{k}-{v}" for k, v in params.items()).replace(".", "p")


def _encoder_weights_for(alpha: float, weights: str | None) -> str | None:
    """Local weights exist for alpha 1.0 only; other alphas fall back to random init (recorded in the table)."""
    if alpha != 1.0 and weights not in (None, "imagenet"):
        log.warning("no local ImageNet weights for alpha %s: that trial starts from random init", alpha)
        return None
    return weights


def _write_csv(path: Path, rows: list[dict]) -> None:
    """Rewrite the whole table atomically (a sweep is small)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def run_sweep(base: TrainConfig, items: list[Item], out_dir: Path, space: dict[str, list] | None = None,
              max_trials: int | None = None, seed: int = 0) -> list[dict]:
    """Train each trial (resumable: finished trials are read back), log HParams, write out_dir/results.csv."""
    import json

    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    space = space or DEFAULT_SPACE
    trials = grid(space)
    if max_trials is not None and max_trials < len(trials):
        trials = random.Random(seed).sample(trials, max_trials)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tf.summary.create_file_writer(str(out_dir / "hparams")).as_default():
        hp.hparams_config(hparams=[hp.HParam(k, hp.Discrete(sorted(set(v)))) for k, v in space.items()],
                          metrics=[hp.Metric("val_mean_iou"), hp.Metric("val_fg_iou")])
    rows = []
    for n, params in enumerate(trials, 1):
        name = trial_name(params)
        run_dir = out_dir / name
        weights = _encoder_weights_for(params.get("alpha", base.alpha), base.encoder_weights)
        result_file = run_dir / "result.json"
        if result_file.exists():
            result = json.loads(result_file.read_text())
            log.info("trial %d/%d %s: already done", n, len(trials), name)
        else:
            log.info("trial %d/%d %s", n, len(trials), name)
            cfg = replace(base, run_dir=run_dir, encoder_weights=weights, **params)
            # Fine-tuning LR follows the trial's LR so the optimiser/LR pair is what is compared.
            cfg.finetune_lr = cfg.lr / 10
            r = train(cfg, items)
            result = {"best_val_mean_iou": r.best_val_mean_iou, "best_val_fg_iou": r.best_val_fg_iou,
                      "epochs": r.epochs, "seconds": r.seconds}
        row = {"trial": name, **{k: params.get(k, getattr(base, k)) for k in DEFAULT_SPACE},
               "encoder_weights": "imagenet-local" if weights else "none",
               "val_mean_iou": round(result["best_val_mean_iou"], 4), "val_fg_iou": round(result["best_val_fg_iou"], 4),
               "epochs": result["epochs"], "seconds": round(result["seconds"])}
        rows.append(row)
        with tf.summary.create_file_writer(str(out_dir / "hparams" / name)).as_default():
            hp.hparams(params, trial_id=name)
            tf.summary.scalar("val_mean_iou", row["val_mean_iou"], step=1)
            tf.summary.scalar("val_fg_iou", row["val_fg_iou"], step=1)
        _write_csv(out_dir / "results.csv", rows)
    best = max(rows, key=lambda r: r["val_mean_iou"])
    log.info("best trial: %s (val mean IoU %.4f)", best["trial"], best["val_mean_iou"])
    return rows
