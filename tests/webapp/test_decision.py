"""model.json's optional `decision`: no product under the thresholds, an uncertain class reported as "unknown";
models without it answer as 1.x did."""
from __future__ import annotations

import io
import json
import shutil

import pytest

from core.decision import Decision, product_evidence
from core.segment import ModelError, ModelSpec


def with_decision(model_dir, out_dir, entry):
    """A copy of the tiny model with a decision entry."""
    shutil.copytree(model_dir, out_dir)
    meta = json.loads((out_dir / "model.json").read_text())
    meta["decision"] = entry
    (out_dir / "model.json").write_text(json.dumps(meta))
    return out_dir


def predict(app, photo: bytes) -> dict:
    resp = app.test_client().post("/predict", data={"image": (io.BytesIO(photo), "p.jpg")},
                                  content_type="multipart/form-data")
    assert resp.status_code == 200, resp.data[:300]
    return resp.get_json()


def test_product_evidence_by_hand():
    import numpy as np

    fg = np.array([[0.9, 0.7], [0.2, 0.5]])
    area, score = product_evidence(fg)
    assert area == 0.5 and abs(score - 0.8) < 1e-9
    assert product_evidence(np.zeros((3, 3))) == (0.0, 0.0)


def test_decision_rules():
    d = Decision(min_area=0.01, min_score=0.8, class_threshold=0.6)
    assert d.has_product(0.02, 0.85) and not d.has_product(0.005, 0.99) and not d.has_product(0.5, 0.79)
    assert d.certain(0.6) and not d.certain(0.59)
    assert Decision.from_dict(None) is None and Decision.from_dict({"min_area": 0.1}) == Decision(min_area=0.1)
    with pytest.raises(ValueError):
        Decision.from_dict({"min_score": 1.5})


def test_old_model_json_answers_as_before(client, square_photo):
    body = predict(client.application, square_photo())
    assert set(body["predictions"][0]) == {"label", "score", "bbox", "area"}
    assert body["predictions"][0]["label"] == "chair"


def test_certain_product_gets_its_label(make_app, model_dir, tmp_path, square_photo):
    app = make_app(MODEL_DIR=str(with_decision(model_dir, tmp_path / "m", {"min_area": 0.01, "min_score": 0.5,
                                                                            "class_threshold": 0.5})))
    det = predict(app, square_photo())["predictions"][0]
    assert det["label"] == "chair" and det["uncertain"] is False and det["guess"] == "chair"
    assert 0.5 < det["product_score"] <= 1.0


def test_uncertain_class_is_unknown(make_app, model_dir, tmp_path, square_photo):
    app = make_app(MODEL_DIR=str(with_decision(model_dir, tmp_path / "m", {"class_threshold": 1.0})))
    det = predict(app, square_photo())["predictions"][0]
    assert det["label"] == "unknown" and det["uncertain"] is True and det["guess"] == "chair"


def test_below_min_score_or_area_is_no_product(make_app, model_dir, tmp_path, square_photo):
    grey = square_photo(color=(110, 110, 110))  # a product the tiny model is less sure of
    seen = predict(make_app(MODEL_DIR=str(with_decision(model_dir, tmp_path / "m", {}))), grey)["predictions"][0]
    assert seen["product_score"] < 1.0
    for n, entry in enumerate(({"min_score": seen["product_score"] + 1e-3}, {"min_area": 0.9})):
        app = make_app(MODEL_DIR=str(with_decision(model_dir, tmp_path / f"m{n}", entry)))
        resp = app.test_client().post("/predict?format=png", data={"image": (io.BytesIO(grey), "p.jpg")},
                                      content_type="multipart/form-data")
        assert predict(app, grey)["predictions"] == []
        assert resp.headers["X-Detected-Class"] == "none"


def test_bad_decision_entry_is_a_model_error(model_dir, tmp_path):
    with pytest.raises(ModelError):
        ModelSpec.load(with_decision(model_dir, tmp_path / "m", {"min_score": "high"}))
    with pytest.raises(ModelError):
        ModelSpec.load(with_decision(model_dir, tmp_path / "n", [0.5]))
