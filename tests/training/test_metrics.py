"""IoU and friends against hand-computed answers."""
import math

import numpy as np
import pytest

from training.metrics import (balanced_accuracy, bootstrap_ci, confusion_matrix, dominant_class, foreground_iou, iou_per_class,
                              mean_iou, pixel_accuracy, true_class_confusion)

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


def _fg_iou(conf):
    return float(iou_per_class(conf)[1])


RIGHT = np.array([[3, 0], [0, 1]])  # a photo whose one product pixel is found
WRONG = np.array([[3, 1], [1, 0]])  # a photo whose product pixel is missed and a background pixel called product


@pytest.mark.parametrize("photos, expected", [
    ([RIGHT] * 5, (1.0, 1.0)),  # identical photos: every resample is the same, the interval is a point
    ([WRONG] * 5, (0.0, 0.0)),
    # Two photos, one right and one wrong: resamples are {right, right} (IoU 1), {wrong, wrong} (0) or one of each
    # (1/3), a quarter, a quarter and a half of the time, so the 95% interval runs from 0 to 1.
    ([RIGHT, WRONG], (0.0, 1.0)),
])
def test_bootstrap_interval(photos, expected):
    assert bootstrap_ci(_fg_iou, [np.stack(photos)], n=500) == pytest.approx(expected)


def test_bootstrap_is_paired_and_contains_the_estimate():
    rng = np.random.default_rng(1)
    photos = rng.integers(0, 20, size=(30, 3, 3))
    same = bootstrap_ci(lambda a, b: mean_iou(a) - mean_iou(b), [photos, photos.copy()], n=300)
    assert same == (0.0, 0.0)  # the same photos drawn for both models: no spurious difference
    lo, hi = bootstrap_ci(mean_iou, [photos], n=300)
    assert lo < mean_iou(photos.sum(0)) < hi


def test_bootstrap_rejects_mismatched_samples():
    with pytest.raises(ValueError, match="same non-zero number"):
        bootstrap_ci(mean_iou, [np.zeros((3, 2, 2)), np.zeros((2, 2, 2))])
    with pytest.raises(ValueError, match="same non-zero number"):
        bootstrap_ci(mean_iou, [np.zeros((0, 2, 2))])


@pytest.mark.parametrize("conf, expected", [
    ([[2, 0], [0, 2]], 1.0),
    # recall 3/4 and 0/1: the big class's accuracy does not hide the missed small one (plain accuracy 3/5)
    ([[3, 1], [1, 0]], (3 / 4 + 0 / 1) / 2),
    # class 2 never in the truth: left out, although it is predicted once
    ([[1, 0, 1], [0, 2, 0], [0, 0, 0]], (1 / 2 + 2 / 2) / 2),
    ([[0, 0], [0, 0]], NAN),
])
def test_balanced_accuracy(conf, expected):
    got = balanced_accuracy(np.array(conf))
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_true_class_confusion_by_hand():
    # photo A (class 1): 5 bg right, 1 bg called fg, 1 fg missed, 3 fg right; photo B (class 2): 4 / 0 / 2 / 2;
    # photo C (class 1): 2 / 2 / 0 / 4. Per class: bg IoU 11/(11+3+3), class 1 IoU 7/(7+3+1), class 2 IoU 2/(2+0+2)
    fg = np.array([[[5, 1], [1, 3]], [[4, 0], [2, 2]], [[2, 2], [0, 4]]])
    conf = true_class_confusion(fg, np.array([1, 2, 1]), 3)
    assert conf.tolist() == [[11, 3, 0], [1, 7, 0], [2, 0, 2]]
    assert iou_per_class(conf) == pytest.approx([11 / 17, 7 / 11, 2 / 4])
    # the same photos whatever the order: a sum over photos
    assert true_class_confusion(fg[::-1], np.array([1, 2, 1]), 3).tolist() == conf.tolist()


@pytest.mark.parametrize("labels", [[1, 0, 1], [1, 3, 1], [1, 2]])
def test_true_class_confusion_rejects_photos_without_a_class(labels):
    with pytest.raises(ValueError, match="one product class id"):
        true_class_confusion(np.zeros((3, 2, 2), np.int64), np.array(labels), 3)
