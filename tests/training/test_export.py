"""Export round trip with a tiny untrained model: every format written, TFLite ≈ Keras, model.json contract."""
import json

import numpy as np
import pytest

from training.export import ExportConfig, export_run, run_tflite, sha256_of, update_model_json_metrics
from training.io import atomic_write_json
from training.model import build_model
from core.decision import Decision
from core.refine import GuidedFilter
from training.calibrate import write_decision

CLASSES = ["background", "couch", "chair", "other"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    run = tmp / "run"
    run.mkdir()
    model = build_model(32, len(CLASSES), encoder_weights=None, width=32)
    model.save_weights(run / "best.weights.h5")
    atomic_write_json(run / "config.json", {"input_size": 32, "classes": CLASSES, "alpha": 1.0, "decoder": "fast",
                                            "width": 32})
    # `calibrate`'s choice, which export copies into model.json
    write_decision(run, Decision(min_area=0.01, min_score=0.9, class_threshold=0.6), {})
    cfg = ExportConfig(run_dir=run, work_dir=tmp / "work", ship_dir=tmp / "models", check_images=2,
                       refine=GuidedFilter(radius=3, eps=1e-3))
    result = export_run(cfg, metrics={"test_mean_iou": 0.5})
    return tmp, model, result


def test_every_format_written_and_agrees(exported):
    tmp, model, result = exported
    for key in ("keras", "h5", "saved_model", "tflite_fp32", "tflite_fp16"):
        assert result["files"][key]["bytes"] > 0
    assert result["checks"]["tflite_fp32"]["max_abs_diff"] < 1e-3
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    fp16 = run_tflite(tmp / "models" / "roomfit_seg_fp16.tflite", x)
    assert np.abs(fp16 - model(x).numpy()).max() < 0.05  # fp16 weights: close, not equal


def test_model_json_contract(exported):
    tmp, _, _ = exported
    doc = json.loads((tmp / "models" / "model.json").read_text())
    assert doc["name"] == "roomfit-seg" and doc["classes"] == CLASSES and doc["serving_file"] == "tflite_fp16"
    assert doc["input"] == {"height": 32, "width": 32, "channels": 3, "dtype": "float32", "range": [0, 255],
                            "color": "RGB", "resize": "bilinear", "antialias": False}
    assert doc["output"] == {"kind": "logits", "layout": "NHWC", "height": 32, "width": 32, "channels": 4}
    for entry in doc["files"].values():
        path = tmp / "models" / entry["path"]
        assert sha256_of(path) == entry["sha256"] and path.stat().st_size == entry["bytes"]
    assert set(doc["files"]) == {"tflite_fp16", "h5"}
    assert GuidedFilter.from_dict(doc["refine"]) == GuidedFilter(radius=3, eps=1e-3)  # what serving will apply
    assert Decision.from_dict(doc["decision"]) == Decision(min_area=0.01, min_score=0.9, class_threshold=0.6)
    update_model_json_metrics(tmp / "models" / "model.json", {"test_mean_iou": 0.9})
    again = json.loads((tmp / "models" / "model.json").read_text())
    assert again["metrics"] == {"test_mean_iou": 0.9} and again["files"] == doc["files"]


def test_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained run"):
        export_run(ExportConfig(run_dir=tmp_path, work_dir=tmp_path / "w", ship_dir=None))
