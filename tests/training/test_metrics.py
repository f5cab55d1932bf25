"""IoU and friends against hand-computed answers."""
import math

import numpy as np
import pytest

from training.metrics import (confusion_matrix, dominant_class, foreground_iou, iou_per_class, mean_iou,
                              pixel_accuracy)

NAN = float("nan")

# truth, prediction, classes, IoU per class (worked by hand), pixel accuracy
CASES = [
    # perfect
    ([0, 1, 2, 2], [0, 1, 2, 2], 3, [1.0, 1.0, 1.0], 1.0),
    # class 1: tp 1, fp 1 (pixel 0), fn 0 -> 1/2; class 0: tp 0, fn 1 -> 0/1; class 2 perfect
    ([0, 1, 2, 2], [1, 1, 2, 2], 3, [0.0, 0.5, 1.0], 0.75),
    # class 2 absent from truth and prediction -> NaN, not 0
    ([0, 0, 1, 1], [0, 1, 1, 1], 3, [0.5, 2 / 3, NAN], 0.75),
    # everything wrong
    ([1, 1], [0, 0], 2, [0.0, 0.0], 0.0),
    # 2D input, classes 0..3: class 3 tp 2 fp 0 fn 1 -> 2/3; class 0 tp 1 fp 1 fn 0 -> 1/2
    ([[0, 3], [3, 3]], [[0, 0], [3, 3]], 4, [0.5, NAN, NAN, 2 / 3], 0.75),
]


@pytest.mark.parametrize("truth, pred, n, expected, accuracy", CASES)
def test_iou_table(truth, pred, n, expected, accuracy):
    conf = confusion_matrix(np.array(truth), np.array(pred), n)
    got = iou_per_class(conf)
    for g, e in zip(got, expected):
        assert (math.isnan(g) and math.isnan(e)) or g == pytest.approx(e)
    assert pixel_accuracy(conf) == pytest.approx(accuracy)
    finite = [e for e in expected if not math.isnan(e)]
    assert mean_iou(conf) == pytest.approx(sum(finite) / len(finite))


def test_mean_iou_over_chosen_classes():
    conf = confusion_matrix(np.array([0, 1, 2, 2]), np.array([1, 1, 2, 2]), 3)
    assert mean_iou(conf, [1, 2]) == pytest.approx(0.75)


@pytest.mark.parametrize("truth, pred, expected", [
    ([0, 1, 2, 0], [0, 2, 1, 0], 1.0),  # classes differ but foreground agrees
    ([0, 1, 1, 0], [0, 1, 0, 1], 1 / 3),
    ([0, 0], [0, 0], NAN),
])
def test_foreground_iou(truth, pred, expected):
    got = foreground_iou(np.array(truth), np.array(pred))
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


@pytest.mark.parametrize("pred, other, expected", [
    ([0, 1, 1, 2], None, 1),
    ([0, 3, 3, 3, 2], 3, 2),  # 'other' loses to any real class
    ([0, 3, 3], 3, 3),  # ... but is the label when nothing else is there
    ([0, 0], 3, 0),
])
def test_dominant_class(pred, other, expected):
    assert dominant_class(np.array(pred), 4, other) == expected


def test_confusion_rejects_bad_input():
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 3)
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)
