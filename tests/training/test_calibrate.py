"""Decision thresholds, false-positive rate and per-group summaries on hand-computed cases."""
import numpy as np
import pytest

from core.decision import Decision
from training.calibrate import (Evidence, choose_decision, false_positive_rate, image_evidence, read_decision,
                                summarize_groups, wilson_interval, write_decision)

CLASSES = ("background", "couch", "chair")


def test_image_evidence_matches_the_served_rule():
    probs = np.zeros((2, 2, 3))
    probs[0, 0] = [0.1, 0.8, 0.1]  # couch, fg 0.9
    probs[0, 1] = [0.3, 0.6, 0.1]  # couch, fg 0.7
    probs[1, 0] = [0.2, 0.1, 0.7]  # chair, fg 0.8
    probs[1, 1] = [0.9, 0.05, 0.05]  # background
    e = image_evidence(probs, CLASSES, truth=1)
    assert e.label == 1 and e.area == 0.75
    assert e.product_score == pytest.approx((0.9 + 0.7 + 0.8) / 3)
    assert e.class_score == pytest.approx((0.8 + 0.6) / 2)
    empty = image_evidence(np.tile([1.0, 0.0, 0.0], (2, 2, 1)), CLASSES, truth=0)
    assert (empty.area, empty.product_score, empty.class_score, empty.label) == (0.0, 0.0, 0.0, 0)


def test_false_positive_rate_by_hand():
    negs = [Evidence(0.5, 0.95, 0.9, 1, 0), Evidence(0.003, 0.99, 0.9, 2, 0), Evidence(0.2, 0.6, 0.5, 1, 0),
            Evidence(0.0, 0.0, 0.0, 0, 0)]
    legacy = false_positive_rate(negs, None)  # 1.x: any label with area >= 0.5%
    assert legacy["with_product"] == 2 and legacy["false_positive_rate"] == 0.5
    strict = false_positive_rate(negs, Decision(min_area=0.01, min_score=0.9))
    assert strict["with_product"] == 1 and strict["false_positive_rate"] == 0.25
    lo, hi = strict["false_positive_rate_ci95"]
    assert lo < 0.25 < hi


def test_wilson_interval():
    lo, hi = wilson_interval(0, 100)
    assert lo == 0.0 and 0.03 < hi < 0.04  # the "rule of three" neighbourhood
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_choose_decision_keeps_products_and_drops_negatives():
    products = [Evidence(0.30, 0.97, 0.9, 1, 1), Evidence(0.20, 0.93, 0.8, 2, 2), Evidence(0.10, 0.90, 0.55, 2, 1),
                Evidence(0.40, 0.99, 0.7, 1, 1)]
    negatives = [Evidence(0.60, 0.85, 0.9, 1, 0), Evidence(0.02, 0.96, 0.9, 2, 0), Evidence(0.0, 0.0, 0.0, 0, 0),
                 Evidence(0.5, 0.70, 0.6, 1, 0)]
    decision, report = choose_decision(products, negatives, max_fpr=0.0, min_precision=1.0)
    # min_score just above 0.85 drops the first negative and the fourth; min_area above 0.02 drops the second;
    # all four products stay (their smallest score is 0.90, their smallest area 0.10).
    assert report["val_false_positive_rate"] == 0.0 and report["val_product_recall"] == 1.0
    assert 0.02 < decision.min_area <= 0.10 and 0.85 < decision.min_score <= 0.90
    # the one wrong class has class score 0.55: the lowest threshold with precision 1 is the next score, 0.7
    assert decision.class_threshold == pytest.approx(0.7)
    assert report["val_label_coverage"] == 0.75


def test_choose_decision_without_a_clean_cut_takes_the_least_leaky():
    products = [Evidence(0.3, 0.9, 0.9, 1, 1)]
    negatives = [Evidence(0.3, 0.9, 0.9, 1, 0), Evidence(0.9, 0.99, 0.9, 1, 0)]
    decision, report = choose_decision(products, negatives, max_fpr=0.0)
    assert report["val_false_positive_rate"] == 0.0 and report["val_product_recall"] == 0.0


def test_summarize_groups_by_hand():
    fg = np.array([[[10, 0], [0, 10]],  # perfect: IoU 1
                   [[10, 5], [5, 10]],  # IoU 10/20
                   [[0, 0], [10, 10]]])  # IoU 10/20
    right = np.array([1, 0, -1])
    out = summarize_groups(fg, right, ["scene", "white", "scene"], bootstrap=200)
    assert out["overall"]["foreground_iou"] == pytest.approx(30 / 50)
    assert out["scene"]["foreground_iou"] == pytest.approx(20 / 30) and out["scene"]["images"] == 2
    assert out["scene"]["category_accuracy"] == 1.0 and out["scene"]["classed_images"] == 1
    assert out["white"]["category_accuracy"] == 0.0
    assert out["overall"]["category_accuracy"] == 0.5
    lo, hi = out["overall"]["category_accuracy_ci95"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
    with pytest.raises(ValueError):
        summarize_groups(fg, right, ["a"])


def test_decision_file_round_trip(tmp_path):
    assert read_decision(tmp_path) is None
    write_decision(tmp_path, Decision(0.01, 0.9, 0.6), {"val_products": 3})
    assert read_decision(tmp_path) == Decision(0.01, 0.9, 0.6)
