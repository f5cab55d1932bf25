"""Evaluation end to end on tiny synthetic data: test split only, full-resolution scoring, metrics.json and plots."""
import json

import numpy as np

from training.dataset import build_dataset_file
from training.evaluate import EvalConfig, ModelUnderTest, evaluate, headline, predict_full
from training.io import atomic_write_json
from training.model import build_model

from .conftest import CLASSES


def test_predict_full_returns_photo_resolution():
    model = build_model(32, 3, encoder_weights=None)
    pred = predict_full(model, np.zeros((48, 40, 3), np.uint8), 32)
    assert pred.shape == (48, 40) and pred.dtype == np.uint8


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
                                  latency_images=2), items, CLASSES)
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
                                     "foreground_iou_diff_ci95": [0.0, 0.0]}
