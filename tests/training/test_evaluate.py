"""Evaluation end to end on tiny synthetic data: test split only, full-resolution scoring, metrics.json and plots."""
import json

import numpy as np
import pytest
from PIL import Image

from training.dataset import build_dataset_file
from training.evaluate import (EvalConfig, ModelUnderTest, PhotoScores, evaluate, foreground_scores, headline,
                               predict_full, summarize)
from training.metrics import confusion_matrix, foreground_confusion
from training.io import atomic_write_json
from training.model import build_model
from core.refine import GuidedFilter

from .conftest import CLASSES


def test_predict_full_returns_photo_resolution():
    model = build_model(32, 3, encoder_weights=None)
    pred = predict_full(model, np.zeros((48, 40, 3), np.uint8), 32)
    assert pred.shape == (48, 40) and pred.dtype == np.uint8


def test_predict_full_refined_keeps_the_best_foreground_class():
    """Served protocol: foreground from the refined probability, labelled with the best non-background class."""
    import tensorflow as tf

    def confident(x, training=False):  # logits (bg 0, class 1: 1, class 2: 3): foreground of class 2 everywhere
        return tf.concat([tf.zeros_like(x[..., :1]), tf.ones_like(x[..., :1]), 3 * tf.ones_like(x[..., :1])], -1)

    image = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    plain = predict_full(confident, image, 32)
    refined = predict_full(confident, image, 32, GuidedFilter())
    assert refined.shape == plain.shape == (48, 40)
    assert (refined == 2).all() and (plain == 2).all()


def test_true_class_scores_the_masks_alone():
    """Two photos with perfect masks, the first given the wrong class: the mean IoU pays for the class, the
    true-class mean IoU (the masks alone) is 1."""
    classes = ("background", "a", "b")
    truth = [np.array([0, 1, 1, 0]), np.array([0, 2, 2, 2])]
    pred = [np.array([0, 2, 2, 0]), np.array([0, 2, 2, 2])]
    scores = PhotoScores(conf=np.array([confusion_matrix(t, p, 3) for t, p in zip(truth, pred)]),
                         conf_dominant=np.array([confusion_matrix(t, p, 3) for t, p in zip(truth, pred)]),
                         fg=np.array([foreground_confusion(t, p) for t, p in zip(truth, pred)]),
                         right=np.array([0, 1]), label=np.array([1, 2]))
    out = summarize(scores, classes, bootstrap=0)
    assert out["category_accuracy"] == 0.5
    assert out["mean_iou"] == pytest.approx((1 + 0 + 3 / 5) / 3)
    assert out["mean_iou_true_class"] == 1.0 and out["iou_per_class_true_class"] == {"background": 1.0, "a": 1.0,
                                                                                     "b": 1.0}


def test_evaluate_writes_metrics_and_plots(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    run = tmp_path / "run"
    run.mkdir()
    build_model(32, len(CLASSES), encoder_weights=None).save_weights(run / "best.weights.h5")
    atomic_write_json(run / "config.json", {"input_size": 32, "classes": list(CLASSES), "alpha": 1.0,
                                            "decoder": "fast", "width": 96})
    out = tmp_path / "eval"
    metrics = evaluate(EvalConfig(models=[ModelUnderTest("fast", run), ModelUnderTest("again", run)], out_dir=out,
                                  latency_images=2, refine=GuidedFilter(radius=1)), items, CLASSES)
    n_test = sum(1 for it in items if it.split == "test" and it.klass)
    m = metrics["models"]["fast"]["classed"]
    assert m["images"] == n_test and 0 <= m["foreground_iou"] <= 1 and 0 <= m["category_accuracy"] <= 1
    assert json.loads((out / "metrics.json").read_text())["split"] == "test"
    assert {p.name for p in out.glob("*.png")} == {"iou_per_class.png", "iou_vs_latency.png", "learning_curves.png"}
    assert headline(metrics, "fast")["test_images_classed"] == n_test
    lo, hi = m["mean_iou_ci95"]
    assert lo <= m["mean_iou"] <= hi and headline(metrics, "fast")["test_foreground_iou_ci95"] == [
        round(v, 4) for v in m["foreground_iou_ci95"]]
    # The same weights twice: the paired difference is exactly zero in every resample.
    assert metrics["comparison"] == {"a": "fast", "b": "again", "mean_iou_diff_ci95": [0.0, 0.0],
                                     "foreground_iou_diff_ci95": [0.0, 0.0],
                                     "foreground_iou_products_diff_ci95": [0.0, 0.0]}
    # Foreground IoU also over every test product photo, the unclassed ones included.
    products = metrics["models"]["fast"]["products"]
    assert products["images"] == sum(1 for it in items if it.split == "test")
    assert headline(metrics, "fast")["test_images_products"] == products["images"]
    # The served protocol is scored too, with its own comparison and the refinement's own gain.
    refined = metrics["models"]["fast"]["refined"]
    assert refined["classed"]["images"] == n_test and refined["products"]["images"] == products["images"]
    assert metrics["comparison_refined"]["foreground_iou_diff_ci95"] == [0.0, 0.0]
    assert set(metrics["refine_gain"]) == {"fast", "again"} and metrics["refine"]["radius"] == 1
    assert headline(metrics, "fast")["test_refined"]["foreground_iou"] == round(refined["classed"]["foreground_iou"], 4)
    assert 0 <= headline(metrics, "fast")["test_refined"]["mean_iou_true_class"] <= 1
    assert headline(metrics, "fast")["test_mean_iou_true_class"] == round(m["mean_iou_true_class"], 4)


def test_foreground_scores_count_unclassed_products_as_foreground(tiny_data, tmp_path):
    """A model that calls every pixel foreground: an unclassed product's pixels (255) are hits, not false alarms."""
    import tensorflow as tf

    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    unclassed = [it for it in items if it.klass is None][:2]

    def everything_foreground(x, training=False):
        return tf.concat([tf.zeros_like(x[..., :1]), tf.ones_like(x[..., :2])], axis=-1)

    fg = foreground_scores(everything_foreground, 32, unclassed, CLASSES)
    assert fg.shape == (2, 2, 2)
    for it, conf in zip(unclassed, fg):
        product = int((np.asarray(Image.open(it.mask)) == 255).sum())
        assert conf[1, 1] == product and conf[0, 1] == 48 * 48 - product and conf[:, 0].sum() == 0


def test_evaluate_reports_cross_shop_and_negatives_apart_from_ikea(tiny_data, tmp_path):
    """Model 2.0's dataset: extra-collection test photos by background and a negative set get their own blocks; the
    ikea blocks keep 1.x's photos only."""
    from dataclasses import replace

    from core.decision import Decision
    from training.calibrate import write_decision
    from training.dataset import Item

    manifest, labels = tiny_data
    ikea = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    extra = [replace(it, id=f"x{n}", split="test", collection="extra", background=bg)
             for n, (it, bg) in enumerate(zip(ikea[:6], ["scene", "scene", "plain", "white", "white", "white"]))]
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(noise)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(empty)
    negatives = [Item(f"n{k}", str(noise), str(empty), str(empty), None, "test", collection="negative",
                      kind="negative") for k in range(3)]
    run = tmp_path / "run"
    run.mkdir()
    build_model(32, len(CLASSES), encoder_weights=None).save_weights(run / "best.weights.h5")
    atomic_write_json(run / "config.json", {"input_size": 32, "classes": list(CLASSES), "alpha": 1.0,
                                            "decoder": "fast", "width": 96})
    write_decision(run, Decision(min_area=1.0, min_score=1.0), {})  # nothing passes: no false positives
    metrics = evaluate(EvalConfig(models=[ModelUnderTest("fast", run)], out_dir=tmp_path / "eval", latency_images=2),
                       ikea + extra + negatives, CLASSES)
    m = metrics["models"]["fast"]
    assert m["products"]["images"] == sum(1 for it in ikea if it.split == "test")  # ikea only, as in 1.x
    cross = m["cross_shop"]["plain"]
    assert {k: v["images"] for k, v in cross.items()} == {"overall": 6, "scene": 2, "plain": 1, "white": 3}
    assert cross["overall"]["classed_images"] == sum(it.klass is not None for it in extra)
    assert m["negatives"]["legacy_rule"]["images"] == 3
    assert m["negatives"]["with_decision"]["false_positive_rate"] == 0.0
    head = headline(metrics, "fast")
    assert head["test_cross_shop"]["scene"]["images"] == 2 and head["test_negatives"]["with_product"] == 0
