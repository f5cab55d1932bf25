"""make_loss on hand-computed cases: unclassed (255) pixels as partial 'some foreground class' labels."""
import math

import numpy as np
import pytest

from training.losses import make_loss

L2, L3 = math.log(2.0), math.log(3.0)
ZERO3 = [0.0, 0.0, 0.0]

# (case, labels of a 1×1×W batch, logits per pixel, class weights, unclassed_weight, dice_weight, expected loss)
CASES = [
    ("255 pixel, 2 classes: -log(1 - p_bg)", [255], [[0.0, L3]], [1, 1], None, 0.0, -math.log(0.75)),
    ("255 pixel, fg mass split over classes", [255], [[0.0, 0.0, L2]], [1, 1, 1], None, 0.0, -math.log(0.75)),
    ("classed + 255, weight = mean fg weight", [1, 255], [ZERO3, [0.0, 0.0, L2]], [1, 2, 4], None, 0.0,
     (2 * L3 + 3 * math.log(4 / 3)) / 5),
    ("classed + 255, explicit weight", [1, 255], [ZERO3, [0.0, 0.0, L2]], [1, 2, 4], 1.0, 0.0,
     (2 * L3 + math.log(4 / 3)) / 3),
    ("absent class (weight 0) not in the mean", [1, 255], [ZERO3, [0.0, 0.0, L2]], [1, 2, 0], None, 0.0,
     (2 * L3 + 2 * math.log(4 / 3)) / 4),
    # Dice over the classed pixel alone: class 1 (2·1/3 + 1) / (1/3 + 1 + 1) = 5/7; class 0 absent from the truth.
    ("255 pixel left out of the Dice", [1, 255], [ZERO3, [0.0, 0.0, L2]], [1, 1, 1], None, 1.0,
     (L3 + math.log(4 / 3)) / 2 + 2 / 7),
    # No 255: CE log 2; Dice per class (2·0.5 + 1) / ((0.5 + 0.5) + 1 + 1) = 2/3.
    ("no 255: as before", [0, 1], [[0.0, 0.0], [0.0, 0.0]], [1, 1], None, 1.0, L2 + 1 / 3),
]


@pytest.mark.parametrize("labels, logits, weights, unclassed_weight, dice_weight, expected",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hand_computed(labels, logits, weights, unclassed_weight, dice_weight, expected):
    loss = make_loss(np.array(weights, np.float32), dice_weight, unclassed_weight)
    y = np.array(labels, np.int32).reshape(1, 1, -1, 1)
    x = np.array(logits, np.float32).reshape(1, 1, len(labels), -1)
    assert float(loss(y, x)) == pytest.approx(expected, rel=1e-5)


def _reference_loss(y: np.ndarray, logits: np.ndarray, w: np.ndarray, dice_weight: float) -> float:
    """The loss before partial labels (classed pixels only), in numpy."""
    onehot = np.eye(len(w))[y[..., 0]]
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    pix_w = (onehot * w).sum(-1)
    ce = (-(onehot * logp).sum(-1) * pix_w).sum() / max(pix_w.sum(), 1e-6)
    prob = np.exp(logp)
    dice = (2 * (prob * onehot).sum((0, 1, 2)) + 1) / ((prob + onehot).sum((0, 1, 2)) + 1)
    present = onehot.sum((0, 1, 2)) > 0
    return float(ce + dice_weight * (1 - dice[present].mean()))


def test_without_255_the_loss_is_unchanged():
    rng = np.random.default_rng(0)
    w = np.array([0.3, 1.0, 2.5, 0.0], np.float32)
    y = rng.integers(0, 3, (2, 5, 5, 1)).astype(np.int32)  # class 3 absent, like a class with no train pixels
    logits = rng.normal(0, 2, (2, 5, 5, 4)).astype(np.float32)
    assert float(make_loss(w, 0.7)(y, logits)) == pytest.approx(_reference_loss(y, logits, w, 0.7), rel=1e-5)


def test_random_255_pixel_adds_its_ce_and_leaves_the_dice_alone():
    rng = np.random.default_rng(1)
    loss = make_loss(np.ones(3, np.float32), dice_weight=1.0)
    logits = rng.normal(0, 2, (1, 1, 2, 3)).astype(np.float32)
    y = np.array([2, 255], np.int32).reshape(1, 1, 2, 1)
    p = np.exp(logits[0, 0]) / np.exp(logits[0, 0]).sum(-1, keepdims=True)
    alone = float(loss(y[:, :, :1], logits[:, :, :1]))  # the classed pixel alone: -log p[0, 2] + (1 - Dice)
    one_minus_dice = alone + math.log(p[0, 2])
    expected = (-math.log(p[0, 2]) - math.log(1 - p[1, 0])) / 2 + one_minus_dice
    assert float(loss(y, logits)) == pytest.approx(expected, rel=1e-5)


# (case, labels of one 1×W image per row, logits per pixel (shared by a row's pixels), image weights, expected term)
IMAGE_CASES = [
    # One image of class 1; fg channels (1, 2) have spatial mean (0, log 3): p(class 1) = 1/4.
    ("one image, uniform logits", [[1, 0]], [0.0, 0.0, L3], None, math.log(4.0)),
    ("image weight scales its term", [[1, 0]], [0.0, 0.0, L3], [0, 3, 1], 3 * math.log(4.0)),
    # The majority class among labelled pixels is the photo's class; p(class 2) = 3/4.
    ("majority class wins", [[2, 2, 1]], [0.0, 0.0, L3], None, -math.log(0.75)),
    # A photo with only background and 255 has no class: the mean runs over the other photo alone.
    ("unclassed photo left out", [[1, 0], [255, 0]], [0.0, 0.0, L3], None, math.log(4.0)),
    ("background-only batch adds nothing", [[0, 0]], [0.0, 0.0, L3], None, 0.0),
]


@pytest.mark.parametrize("rows, pixel_logits, image_weights, expected", [c[1:] for c in IMAGE_CASES],
                         ids=[c[0] for c in IMAGE_CASES])
def test_image_class_term(rows, pixel_logits, image_weights, expected):
    w = np.ones(3, np.float32)
    y = np.array(rows, np.int32).reshape(len(rows), 1, -1, 1)
    logits = np.broadcast_to(np.array(pixel_logits, np.float32), (*y.shape[:3], 3)).copy()
    iw = None if image_weights is None else np.array(image_weights, np.float32)
    with_term = float(make_loss(w, 1.0, image_class_weight=1.0, image_weights=iw)(y, logits))
    without = float(make_loss(w, 1.0)(y, logits))
    assert with_term - without == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_image_weights_must_match_the_classes():
    with pytest.raises(ValueError, match="3 entries"):
        make_loss(np.ones(3, np.float32), image_class_weight=1.0, image_weights=np.ones(2, np.float32))


# (case, labels, alpha, logits per pixel (3 classes), expected soft term): −[α log(1 − p_bg) + (1 − α) log p_bg], mean
SOFT_CASES = [
    ("alpha 1: -log(1 - p_bg)", [1], [1.0], [[0.0, L3, 0.0]], -math.log(0.8)),
    ("alpha 0: -log p_bg", [0], [0.0], [[0.0, L3, 0.0]], -math.log(0.2)),
    ("soft edge, p_bg 1/2", [1], [0.3], [[L2, 0.0, 0.0]], L2),
    # The soft term counts 255 pixels too: the teacher's alpha is there whatever the product's class.
    ("unclassed pixel and a classed one, mean", [255, 0], [0.75, 0.0], [[0.0, L3, 0.0], [0.0, L3, 0.0]],
     (-(0.75 * math.log(0.8) + 0.25 * math.log(0.2)) - math.log(0.2)) / 2),
]


@pytest.mark.parametrize("labels, alpha, logits, expected", [c[1:] for c in SOFT_CASES], ids=[c[0] for c in SOFT_CASES])
def test_soft_foreground_term(labels, alpha, logits, expected):
    w = np.ones(3, np.float32)
    hard = np.array(labels, np.float32).reshape(1, 1, -1, 1)
    y = np.concatenate([hard, np.array(alpha, np.float32).reshape(1, 1, -1, 1)], axis=-1)
    x = np.array(logits, np.float32).reshape(1, 1, len(labels), 3)
    with_term = float(make_loss(w, 1.0, soft_fg_weight=2.0)(y, x))
    without = float(make_loss(w, 1.0)(hard.astype(np.int32), x))
    assert with_term - without == pytest.approx(2.0 * expected, rel=1e-5)


def test_soft_term_needs_the_alpha_channel():
    """Validation batches (class ids only) get the hard loss alone, whatever soft_fg_weight is."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, (1, 4, 4, 1)).astype(np.int32)
    logits = rng.normal(0, 1, (1, 4, 4, 3)).astype(np.float32)
    w = np.ones(3, np.float32)
    assert float(make_loss(w, soft_fg_weight=1.0)(y, logits)) == pytest.approx(float(make_loss(w)(y, logits)))
