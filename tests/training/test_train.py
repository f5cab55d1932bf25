"""A few training steps on tiny synthetic data lower the loss; the full two-phase run writes its checkpoint."""
import json

import numpy as np
import pytest

from training.dataset import build_dataset_file
from training.losses import class_weights, make_loss
from training.model import build_model
from training.train import (TrainConfig, best_logged_score, evaluate_split, fit_items, logged_scores, make_early_stopping,
                            train, train_image_counts,
                            train_pixel_counts)

from .conftest import CLASSES, make_photo


def test_class_weights():
    w = class_weights(np.array([900, 100, 0, 25]), power=1.0)  # median freq of present classes = 100/1025
    assert w[2] == 0 and w[1] == 1.0 and w[3] == 4.0 and w[0] == np.float32(100 / 900)


def test_255_pixels_are_neither_counted_nor_scored():
    import tensorflow as tf

    masks = np.array([0, 0, 1, 255, 255, 2], np.uint8).reshape(1, 1, 6, 1)
    ds = [(tf.zeros((1, 1, 6, 3)), tf.constant(masks))]
    assert train_pixel_counts(ds, 3).tolist() == [2, 1, 1]
    logits = np.eye(3, dtype=np.float32)[[0, 1, 1, 0, 2, 2]].reshape(1, 1, 6, 3)  # 255s predicted bg and class 2
    conf, fg = evaluate_split(lambda images, training: tf.constant(logits), ds, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]] and fg.tolist() == [[1, 1], [0, 2]]


def test_unclassed_fg_and_other_class_are_exclusive(tmp_path):
    cfg = TrainConfig(run_dir=tmp_path / "run", classes=CLASSES + ("other",), unclassed_fg=True)
    with pytest.raises(ValueError, match="pick one"):
        train(cfg, [])
    assert not (tmp_path / "run").exists()


def test_few_steps_lower_the_loss():
    import keras

    keras.utils.set_random_seed(0)
    pairs = [make_photo(k, size=32, offset=o) for k in ("couch", "chair") for o in range(4)]
    x = np.stack([p[0] for p in pairs]).astype(np.float32)
    y = np.stack([np.where(p[1] == 255, 0, p[1]) for p in pairs])[..., None]
    model = build_model(32, len(CLASSES), encoder_weights=None)
    loss = make_loss(np.ones(len(CLASSES), np.float32), dice_weight=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss, run_eagerly=True)
    # Judge the training-mode loss Keras records per step: inference-mode loss after a few steps depends on batch-norm
    # moving averages that have barely moved yet, which made a before/after model(x) comparison flaky.
    losses = model.fit(x, y, batch_size=8, epochs=8, verbose=0).history["loss"]
    assert losses[-1] < 0.9 * losses[0]


def test_train_two_phases_and_resume(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    classes = CLASSES + ("other",)
    cfg = TrainConfig(run_dir=tmp_path / "run", classes=classes, input_size=32, batch_size=8, epochs_frozen=1,
                      epochs_finetune=1, unfreeze_from="block_13_expand", verbose=0, run_eagerly=True)
    result = train(cfg, items)
    assert result.weights.exists() and result.epochs == 2
    assert json.loads((tmp_path / "run" / "finetune.done.json").read_text())["epochs"] == 2
    assert (tmp_path / "run" / "history.csv").exists() and any((tmp_path / "run" / "tb").iterdir())
    again = train(cfg, items)  # both phases done: nothing retrained
    assert again.epochs == 2


class _Killed(Exception):
    """Stands in for a killed process."""


def test_an_interrupted_phase_resumes_where_it_stopped(tiny_data, tmp_path, monkeypatch):
    """Killed after 2 of 3 frozen epochs, the run resumes at the third: every epoch is counted once, the fine-tuning
    phase's resume point (rows after the frozen ones) stays right, and history.csv has each epoch once."""
    import keras

    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    cfg = TrainConfig(run_dir=tmp_path / "run", classes=CLASSES, input_size=32, batch_size=8, epochs_frozen=3,
                      epochs_finetune=0, patience=10, verbose=0, run_eagerly=True)

    class KillAfterTwo(keras.callbacks.TerminateOnNaN):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise _Killed

    with monkeypatch.context() as m:
        m.setattr(keras.callbacks, "TerminateOnNaN", KillAfterTwo)
        with pytest.raises(_Killed):
            train(cfg, items)
    assert (tmp_path / "run" / "backup_frozen").exists() and not (tmp_path / "run" / "frozen.done.json").exists()
    result = train(cfg, items)
    assert result.epochs == 3
    assert json.loads((tmp_path / "run" / "frozen.done.json").read_text())["epochs"] == 3
    assert [epoch for epoch, _ in logged_scores(tmp_path / "run" / "history.csv")] == [0, 1, 2]


@pytest.mark.parametrize("csv_text, expected", [
    (None, -np.inf),  # no history yet
    ("epoch,val_score\n", -np.inf),
    ("epoch,loss,val_score\n0,1.0,0.40\n1,0.8,0.55\n2,0.7,0.50\n", 0.55),
    ("epoch,loss,val_score\n0,1.0,0.40\n1,0.9,\n", 0.40),  # an epoch logged without a score is skipped
])
def test_best_logged_score_is_what_a_resumed_phase_must_beat(tmp_path, csv_text, expected):
    path = tmp_path / "history.csv"
    if csv_text is not None:
        path.write_text(csv_text)
    assert best_logged_score(path) == expected


@pytest.mark.parametrize("skip, expected", [
    (0, [(0, 0.40), (1, 0.55), (0, 0.50), (1, 0.60)]),
    (2, [(0, 0.50), (1, 0.60)]),  # the second phase's rows only (its epochs count from 0 again)
    (4, []),
])
def test_logged_scores_after_the_earlier_phases(tmp_path, skip, expected):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_score\n0,1.0,0.40\n1,0.8,0.55\n0,0.7,0.50\n1,0.6,0.60\n")
    assert logged_scores(path, skip) == expected


@pytest.mark.parametrize("patience, wait, stops", [(2, 2, True), (5, 2, False)])
def test_early_stopping_resumes_its_patience_from_the_logged_epochs(patience, wait, stops):
    """An interrupted phase logged 0.5, 0.6 (its best), 0.55, 0.54: two epochs without gain are already spent."""
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False
    early = make_early_stopping(patience, [(0, 0.5), (1, 0.6), (2, 0.55), (3, 0.54)])
    early.set_model(model)
    early.on_train_begin()
    assert float(early.best) == 0.6 and early.wait == wait and model.stop_training == stops
    early.on_epoch_end(4, {"val_score": 0.7})  # a new best resets the count
    assert float(early.best) == 0.7 and early.wait == 0
    fresh = make_early_stopping(patience)
    fresh.set_model(model)
    fresh.on_train_begin()
    assert fresh.best is None and fresh.wait == 0


@pytest.mark.parametrize("change, message", [
    ({"input_size": 100}, "multiple of 32"),
    ({"epochs_frozen": -1}, "epochs and patience"),
    ({"epochs_frozen": 0, "epochs_finetune": 0}, "nothing to train"),
    ({"lr": 0.0}, "learning rates"),
    ({"ema_momentum": 1.5}, "EMA momentum"),
])
def test_bad_training_settings_are_refused_before_any_work(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(run_dir=tmp_path / "run", classes=CLASSES, **change)
    assert not (tmp_path / "run").exists()


def test_fit_items_adds_val_to_train_and_caps_unclassed(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)

    def count(its, split, classed):
        return sum(it.split == split and (it.klass is not None) == classed for it in its)

    fit = fit_items(items, train_on_val=True)
    assert count(fit, "train", True) == count(items, "train", True) + count(items, "val", True)
    assert count(fit, "val", True) == count(items, "val", True) > 0  # val stays for monitoring
    assert train_image_counts(fit, CLASSES).sum() == count(fit, "train", True)
    capped = fit_items(items, train_on_val=True, max_train_other=1)
    assert count(capped, "train", False) == 1
    assert count(capped, "val", False) == count(items, "val", False) > 0  # the cap never touches val
    assert fit_items(items) == items


def test_final_fit_trains_on_val_for_every_epoch(tiny_data, tmp_path, monkeypatch):
    import keras

    made = []  # (callback name, kwargs) of the checkpoint/early-stopping callbacks train() builds

    def recording(cls):
        class Recording(cls):
            def __init__(self, *args, **kwargs):
                made.append((cls.__name__, kwargs))
                super().__init__(*args, **kwargs)
        return Recording

    monkeypatch.setattr(keras.callbacks, "EarlyStopping", recording(keras.callbacks.EarlyStopping))
    monkeypatch.setattr(keras.callbacks, "ModelCheckpoint", recording(keras.callbacks.ModelCheckpoint))
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    cfg = TrainConfig(run_dir=tmp_path / "run", classes=CLASSES, input_size=32, batch_size=8, epochs_frozen=3,
                      epochs_finetune=0, patience=1, unclassed_fg=True, image_class_weight=1.0, class_pool="masked",
                      soft_fg_weight=1.0, train_on_val=True, verbose=0, run_eagerly=True)
    result = train(cfg, items)
    assert result.epochs == 3
    # Seen photos cannot tell when to stop or which epoch is best: no early stopping, the last weights are kept.
    assert [name for name, _ in made] == ["ModelCheckpoint", "ModelCheckpoint"]  # best (here: every epoch), last
    assert all(kwargs.get("save_best_only", False) is False for _, kwargs in made)
    assert (tmp_path / "run" / "last.weights.h5").is_file()
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["val_seen_in_training"] is True


def test_make_optimizer_keeps_an_ema_only_when_asked():
    from training.train import make_optimizer

    assert not make_optimizer("adam", 1e-3).use_ema
    opt = make_optimizer("sgd", 1e-3, ema_momentum=0.9)
    assert opt.use_ema and opt.ema_momentum == pytest.approx(0.9)


def test_ema_run_saves_the_averaged_weights(tiny_data, tmp_path, monkeypatch):
    """With a slow average the saved weights stay near the starting ones, while plain training moves away."""
    import training.model

    initial = []
    real_build = training.model.build_model

    def recording_build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        initial.append([w.copy() for w in model.get_weights()])
        return model

    monkeypatch.setattr(training.model, "build_model", recording_build)
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    moved = {}
    for ema in (None, 0.999):
        run = tmp_path / f"run_{ema}"
        cfg = TrainConfig(run_dir=run, classes=CLASSES, input_size=32, batch_size=8, epochs_frozen=2,
                          epochs_finetune=0, patience=5, lr=1e-2, ema_momentum=ema, verbose=0, run_eagerly=True)
        train(cfg, items)
        model = real_build(32, len(CLASSES), decoder="fast", encoder_weights=None)
        model.load_weights(run / "last.weights.h5")
        moved[ema] = sum(float(np.abs(w - w0).sum()) for w, w0 in zip(model.get_weights(), initial[-1]))
    assert np.array_equal(*[np.concatenate([w.ravel() for w in ws]) for ws in initial])  # same seed, same start
    assert moved[0.999] < 0.5 * moved[None]  # the average starts from the weights after the first step


def test_max_train_other_caps_product_photos_not_negatives(tiny_data, tmp_path):
    from training.dataset import Item

    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    negatives = [Item(f"n{k}", "i", "m", "a", None, "train", kind="negative") for k in range(4)]
    capped = fit_items(items + negatives, max_train_other=0)
    assert sum(it.kind == "negative" for it in capped) == 4
    assert not any(it.kind == "photo" and it.klass is None and it.split == "train" for it in capped)
