"""Transfer learning then fine-tuning: train the decoder on a frozen ImageNet encoder, then unfreeze the encoder with a
lower learning rate. Checkpoints on the best validation mean IoU; resumable (phase markers + BackupAndRestore)."""
from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .dataset import OTHER, Item, PipelineConfig, get_dataset
from .io import atomic_write_json
from .label import UNCLASSED
from .metrics import confusion_matrix, foreground_confusion, iou_per_class, mean_iou
from .model import check_input_size

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything one training run needs."""

    run_dir: Path
    classes: tuple[str, ...]
    input_size: int = 160
    decoder: str = "fast"
    alpha: float = 1.0
    width: int = 96
    class_pool: str = "global"  # fast decoder: "global" or "masked" (model.build_model)
    encoder_weights: str | None = None
    batch_size: int = 16
    optimizer: str = "adam"  # adam | adamw | sgd | rmsprop
    lr: float = 3e-3
    finetune_lr: float = 3e-5
    # First encoder layer trained in the fine-tuning phase (None: all of it). Fine-tuning the whole encoder on ~200
    # classed photos memorised them (train loss 0.69 -> 0.26 in 4 epochs) while validation IoU fell.
    unfreeze_from: str | None = None
    epochs_frozen: int = 24
    epochs_finetune: int = 6
    patience: int = 10
    dice_weight: float = 1.0
    # Pixel CE weights (median frequency / frequency) ** power: 0.5 damps them; 0 weighs every pixel alike, so the
    # background pixels between a product's slats count as much as the product's own.
    class_weight_power: float = 0.5
    image_class_weight: float = 0.0  # image-level class CE (losses.make_loss), class-balanced by photo counts
    soft_fg_weight: float = 0.0  # binary CE against the teacher's soft alpha (losses.make_loss), all train photos
    # Exponential moving average of the weights (e.g. 0.99): validation, checkpoints and the final weights use it.
    ema_momentum: float | None = None
    repeat_classed: int = 3
    max_train_other: int | None = None  # cap the unclassed ('other') photos in train, for quick runs
    unclassed_fg: bool = False  # unclassed train photos as partial "some foreground class" labels (mask value 255)
    # Final fit once the recipe is chosen: the validation photos join training (the rare classes gain ~30%), every
    # epoch runs and the last weights are kept; the "val" numbers logged are then on seen photos.
    train_on_val: bool = False
    seed: int = 42
    profile: bool = False
    cache_dir: Path | None = None
    verbose: int = 1
    run_eagerly: bool = False  # tests: skips tf.function tracing, which dominates a 2-step run
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked before any work: a bad value used to surface only after the data set was read (or not at all).
        check_input_size(self.input_size)
        if min(self.epochs_frozen, self.epochs_finetune, self.patience) < 0 or self.batch_size < 1:
            raise ValueError("epochs and patience must be >= 0 and batch size >= 1")
        if self.epochs_frozen + self.epochs_finetune == 0:
            raise ValueError("nothing to train: --epochs-frozen and --epochs-finetune are both 0")
        if self.lr <= 0 or self.finetune_lr <= 0:
            raise ValueError(f"learning rates must be > 0, got {self.lr} and {self.finetune_lr}")
        if self.ema_momentum is not None and not 0 < self.ema_momentum < 1:
            raise ValueError(f"EMA momentum must be between 0 and 1, got {self.ema_momentum}")


@dataclass
class TrainResult:
    """What a finished run produced."""

    best_val_mean_iou: float
    best_val_fg_iou: float
    weights: Path
    seconds: float
    epochs: int


def scored_ids(classes: tuple[str, ...]) -> list[int]:
    """Class ids that count in mean IoU: every class except background-free extras like `other`."""
    return [i for i, c in enumerate(classes) if c != OTHER]


def finite_dict(names: tuple[str, ...], values: np.ndarray) -> dict[str, float | None]:
    """{name: value} with NaN (class absent) as None, so the JSON stays valid."""
    return {n: (None if np.isnan(v) else round(float(v), 4)) for n, v in zip(names, values)}


def make_optimizer(name: str, lr, ema_momentum: float | None = None):
    """A Keras optimiser by name (the sweep really applies it); with `ema_momentum`, it also keeps an exponential
    moving average of the weights (Keras' use_ema), which fit() leaves in the model at the end."""
    import keras

    ema = {} if ema_momentum is None else {"use_ema": True, "ema_momentum": ema_momentum}
    makers = {"adam": lambda: keras.optimizers.Adam(lr, **ema),
              "adamw": lambda: keras.optimizers.AdamW(lr, weight_decay=1e-4, **ema),
              "sgd": lambda: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, **ema),
              "rmsprop": lambda: keras.optimizers.RMSprop(lr, **ema)}
    if name not in makers:
        raise ValueError(f"unknown optimizer {name!r} (choose from {', '.join(makers)})")
    return makers[name]()


def evaluate_split(model, ds, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Class and foreground confusion matrices of a model over a dataset at the model's resolution."""
    conf = np.zeros((num_classes, num_classes), np.int64)
    fg = np.zeros((2, 2), np.int64)
    for images, masks in ds:
        pred = np.argmax(model(images, training=False).numpy(), axis=-1)
        truth = masks.numpy()[..., 0]
        scored = truth != UNCLASSED  # a partial label has no class to score against
        conf += confusion_matrix(truth[scored], pred[scored], num_classes)
        fg += foreground_confusion(truth[scored], pred[scored])
    return conf, fg


def _palette(n: int) -> np.ndarray:
    """Distinct colours for class ids (background black)."""
    rng = np.random.default_rng(7)
    pal = rng.integers(40, 255, size=(max(n, 2), 3)).astype(np.uint8)
    pal[0] = 0
    return pal


def make_iou_callback(val_ds, classes: tuple[str, ...], log_dir: Path, samples: int = 4):
    """Keras callback: per-epoch validation mean IoU / foreground IoU into the logs (so checkpointing and early
    stopping can monitor them) and TensorBoard, plus a strip of sample predictions."""
    import keras
    import tensorflow as tf

    class ValIoU(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.writer = tf.summary.create_file_writer(str(log_dir / "val_iou"))
            self.sample = next(iter(val_ds.unbatch().batch(samples)))
            self.palette = _palette(len(classes))

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            conf, fg = evaluate_split(self.model, val_ds, len(classes))
            logs["val_mean_iou"] = mean_iou(conf, scored_ids(classes))
            logs["val_fg_iou"] = float(iou_per_class(fg)[1])
            # What checkpointing and early stopping watch: class and foreground quality alike. Mean IoU alone swings
            # with a handful of class flips on ~40 validation photos and picked early, blurry checkpoints.
            logs["val_score"] = (logs["val_mean_iou"] + logs["val_fg_iou"]) / 2
            images, masks = self.sample
            pred = np.argmax(self.model(images, training=False).numpy(), axis=-1)
            strip = np.concatenate([images.numpy().astype(np.uint8), self.palette[masks.numpy()[..., 0]],
                                    self.palette[pred]], axis=2)
            with self.writer.as_default():
                tf.summary.scalar("epoch_val_mean_iou", logs["val_mean_iou"], step=epoch)
                tf.summary.scalar("epoch_val_fg_iou", logs["val_fg_iou"], step=epoch)
                for i, c in enumerate(classes):
                    value = iou_per_class(conf)[i]
                    if not np.isnan(value):
                        tf.summary.scalar(f"val_iou/{c}", value, step=epoch)
                tf.summary.image("image | truth | prediction", strip, step=epoch, max_outputs=samples)
            log.info("epoch %d: val mean IoU %.4f, fg IoU %.4f", epoch + 1, logs["val_mean_iou"], logs["val_fg_iou"])

    return ValIoU()


def train_pixel_counts(ds, num_classes: int) -> np.ndarray:
    """Pixels per class in a (non-augmented) dataset; unclassed (255) pixels belong to no class and are not counted."""
    counts = np.zeros(num_classes, np.int64)
    for _, masks in ds:
        values = masks.numpy().ravel()
        counts += np.bincount(values[values != UNCLASSED], minlength=num_classes)[:num_classes]
    return counts


def fit_items(items: list[Item], train_on_val: bool = False, max_train_other: int | None = None) -> list[Item]:
    """The items a run sees: with `train_on_val` a train copy of every val item (val itself stays for monitoring),
    then at most `max_train_other` unclassed train product photos (the first ones in the dataset file's id order)."""
    if train_on_val:
        items = items + [replace(it, split="train") for it in items if it.split == "val"]
    if max_train_other is None:
        return items
    # Only unclassed product photos are capped: negatives (klass None too) and composites are their own budget.
    unclassed_train = [i for i, it in enumerate(items) if it.split == "train" and it.klass is None
                       and it.kind == "photo"]
    drop = set(unclassed_train[max_train_other:])
    return [it for i, it in enumerate(items) if i not in drop]


def train_image_counts(items: list[Item], classes: tuple[str, ...]) -> np.ndarray:
    """Classed train photos per class (background counted as 0)."""
    counts = np.zeros(len(classes), np.int64)
    for it in items:
        if it.split == "train" and it.klass in classes:
            counts[classes.index(it.klass)] += 1
    return counts


def logged_scores(history_csv: Path, skip: int = 0) -> list[tuple[int, float]]:
    """(epoch, val_score) of each row of a run's history.csv after the first `skip` rows (the earlier phases'
    epochs); rows without a score are left out."""
    if not history_csv.is_file():
        return []
    with open(history_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[skip:]
    return [(int(row["epoch"]), float(row["val_score"])) for row in rows if row.get("val_score")]


def best_logged_score(history_csv: Path) -> float:
    """The highest val_score in a run's history.csv (-inf when there is none): what a resumed phase must beat."""
    return max((score for _, score in logged_scores(history_csv)), default=-np.inf)


def make_early_stopping(patience: int, logged: Sequence[tuple[int, float]] = ()):
    """EarlyStopping on val_score. Resuming an interrupted phase, it first replays the (epoch, score) pairs the phase
    logged before, so patience counts the epochs since the phase's best rather than since the restart."""
    import keras

    class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            for epoch, score in logged:
                self.on_epoch_end(epoch, {self.monitor: score})

    return ResumedEarlyStopping(monitor="val_score", mode="max", patience=patience)


def train(cfg: TrainConfig, items: list[Item]) -> TrainResult:
    """Run both phases (skipping what a previous run finished) and return the best checkpoint."""
    import keras

    from .losses import class_weights, make_loss
    from .model import build_model, set_encoder_trainable

    if cfg.unclassed_fg and OTHER in cfg.classes:
        raise ValueError("unclassed_fg and the 'other' class are alternative uses of unclassed photos: pick one")
    start = time.time()
    keras.utils.set_random_seed(cfg.seed)
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run / "config.json", {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()})
    items = fit_items(items, cfg.train_on_val, cfg.max_train_other)
    pipe = PipelineConfig(input_size=cfg.input_size, batch_size=cfg.batch_size, seed=cfg.seed,
                          cache_dir=cfg.cache_dir)
    train_ds = get_dataset(items, "train", cfg.classes, pipe, repeat_classed=cfg.repeat_classed,
                           unclassed_fg=cfg.unclassed_fg, with_alpha=cfg.soft_fg_weight > 0)
    val_ds = get_dataset(items, "val", cfg.classes, pipe)
    # Weights from the classed photos only (also with unclassed_fg): counting the unclassed photos' background but
    # not their 255 foreground would lower the background weight and tilt the model towards growing foreground.
    # Negatives (all background) are left out of the counts too: they would lower background's weight.
    counted = [it for it in items if it.kind != "negative"]
    counts = train_pixel_counts(get_dataset(counted, "train", cfg.classes, pipe, shuffle=False), len(cfg.classes))
    weights = class_weights(counts, power=cfg.class_weight_power)
    log.info("train pixels per class %s -> weights %s", counts.tolist(), np.round(weights, 2).tolist())
    image_weights = class_weights(train_image_counts(items, cfg.classes))
    image_weights[0] = 0.0  # background is never a photo's class
    loss = make_loss(weights, cfg.dice_weight, image_class_weight=cfg.image_class_weight, image_weights=image_weights,
                     soft_fg_weight=cfg.soft_fg_weight)

    model = build_model(cfg.input_size, len(cfg.classes), cfg.alpha, cfg.decoder, cfg.encoder_weights, cfg.width,
                        cfg.class_pool)
    best_path = run / "best.weights.h5"
    history_csv = run / "history.csv"
    best = -np.inf
    epochs_done = 0
    phases = [("frozen", False, cfg.lr, cfg.epochs_frozen), ("finetune", True, cfg.finetune_lr, cfg.epochs_finetune)]
    for name, trainable, lr, epochs in phases:
        marker = run / f"{name}.done.json"
        if marker.exists():
            state = json.loads(marker.read_text())
            best, epochs_done = state["best"], state["epochs"]
            log.info("phase %s already done (best val score %.4f): skipping", name, best)
            continue
        if epochs <= 0:
            continue
        if best_path.exists():  # continue from the best weights of the previous phase
            model.load_weights(best_path)
        phase_logged: list[tuple[int, float]] = []
        if (run / f"backup_{name}").exists():
            # Resuming an interrupted phase: BackupAndRestore brings back its weights and epoch, not the best score
            # so far, and a fresh checkpoint callback would let the next (maybe worse) epoch overwrite the best; a
            # fresh EarlyStopping would restart its patience count. Both start from what history.csv logged.
            best = max(best, best_logged_score(history_csv))
            phase_logged = logged_scores(history_csv, skip=epochs_done)
        set_encoder_trainable(model, trainable, cfg.unfreeze_from)
        steps = sum(1 for _ in train_ds) * epochs
        # Cosine decay in both phases: a constant rate left the frozen phase's validation IoU oscillating.
        schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps), alpha=0.05)
        model.compile(optimizer=make_optimizer(cfg.optimizer, schedule, cfg.ema_momentum), loss=loss,
                      run_eagerly=cfg.run_eagerly)
        # With EMA, the averaged weights are swapped in at each epoch's end, so the callbacks after the swap score
        # and save them (Keras swaps the training weights back at the next epoch's start). The resume backup comes
        # first: it must hold the training weights, not the average.
        ema = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if cfg.ema_momentum is not None else []
        callbacks = [
            keras.callbacks.BackupAndRestore(run / f"backup_{name}"),
            *ema,
            make_iou_callback(val_ds, cfg.classes, run / "tb"),
            keras.callbacks.ModelCheckpoint(best_path, monitor="val_score", mode="max",
                                            save_best_only=not cfg.train_on_val, save_weights_only=True,
                                            initial_value_threshold=None if best == -np.inf else best),
            # The latest weights too: a run's last epoch can be scored on other yardsticks than val_score.
            keras.callbacks.ModelCheckpoint(run / "last.weights.h5", save_weights_only=True),
            keras.callbacks.TensorBoard(run / "tb", profile_batch=(2, 4) if cfg.profile else 0),
            keras.callbacks.CSVLogger(history_csv, append=True),
            keras.callbacks.TerminateOnNaN(),
        ]
        if not cfg.train_on_val:  # seen photos cannot tell when to stop
            callbacks.append(make_early_stopping(cfg.patience, phase_logged))
        log.info("phase %s: encoder %s, lr %g, up to %d epochs", name, "trainable" if trainable else "frozen", lr,
                 epochs)
        hist = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=cfg.verbose)
        scores = hist.history.get("val_score", [])
        best = max([best, *scores])
        epochs_done += len(phase_logged) + len(scores)  # a resumed fit's history holds only its own epochs
        atomic_write_json(marker, {"best": float(best), "epochs": epochs_done})
    if not best_path.exists():
        raise ValueError("training produced no checkpoint (no epochs run?)")
    model.load_weights(best_path)
    conf, fg = evaluate_split(model, val_ds, len(cfg.classes))
    result = TrainResult(best_val_mean_iou=mean_iou(conf, scored_ids(cfg.classes)),
                         best_val_fg_iou=float(iou_per_class(fg)[1]), weights=best_path,
                         seconds=time.time() - start, epochs=epochs_done)
    # Also on the classed validation photos alone: the yardstick shared by runs with and without the `other` class.
    classed_val = get_dataset([it for it in items if it.klass is not None], "val", cfg.classes, pipe)
    conf_c, fg_c = evaluate_split(model, classed_val, len(cfg.classes))
    atomic_write_json(run / "result.json", {**asdict(result), "weights": str(best_path),
                                            "val_seen_in_training": cfg.train_on_val,
                                            "val_iou_per_class": finite_dict(cfg.classes, iou_per_class(conf)),
                                            "val_classed_mean_iou": mean_iou(conf_c, scored_ids(cfg.classes)),
                                            "val_classed_fg_iou": float(iou_per_class(fg_c)[1])})
    log.info("done: best val mean IoU %.4f, fg IoU %.4f in %.0f s", result.best_val_mean_iou, result.best_val_fg_iou,
             result.seconds)
    return result
