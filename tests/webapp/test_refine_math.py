"""webapp.refine: box means and the 3×3 solve against brute force, and the guided filter's behaviour on edges."""
import numpy as np
import pytest
from PIL import Image

from core.refine import GuidedFilter, box_mean, guided_coefficients, refine


@pytest.mark.parametrize("shape, r", [((5, 7), 1), ((2, 6, 4), 2), ((3, 4, 4), 5)])
def test_box_mean_matches_brute_force(shape, r):
    x = np.random.default_rng(0).uniform(size=shape)
    h, w = shape[-2:]
    want = np.empty_like(x)
    for i in range(h):
        for j in range(w):  # the window clipped at the border, averaged over the pixels it keeps
            want[..., i, j] = x[..., max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean(axis=(-2, -1))
    np.testing.assert_allclose(box_mean(x, r), want, atol=1e-12)


def test_flat_colour_gives_the_window_mean():
    """With a flat guide there is no colour to follow: the filter is a plain (double) box mean of p."""
    guide = np.full((3, 9, 9), 0.5)
    p = np.zeros((9, 9))
    p[4, 4] = 1.0
    a, b = guided_coefficients(guide, p, GuidedFilter(radius=1, eps=1e-4))
    np.testing.assert_allclose(a, 0.0, atol=1e-9)
    np.testing.assert_allclose(b, box_mean(box_mean(p, 1), 1), atol=1e-9)


def test_probability_that_follows_the_colour_is_reproduced():
    """p = 0.2 + 0.5 · red exactly: every window fits it, so A = (0.5, 0, 0) and b = 0.2 (eps ≈ 0)."""
    rng = np.random.default_rng(1)
    guide = rng.uniform(size=(3, 12, 12))
    p = 0.2 + 0.5 * guide[0]
    a, b = guided_coefficients(guide, p, GuidedFilter(radius=2, eps=1e-9))
    np.testing.assert_allclose(a[0], 0.5, atol=1e-4)
    np.testing.assert_allclose(a[1:], 0.0, atol=1e-4)
    np.testing.assert_allclose(b, 0.2, atol=1e-4)


def test_refine_snaps_a_blurred_edge_to_the_photo_edge():
    """A dark product on a white photo, its probability known only at 1/5 the resolution and blurred: refined at full
    resolution, the mask matches the product far better than plain bilinear upsampling."""
    side, small = 200, 40
    truth = np.zeros((side, side), bool)
    truth[50:150, 70:133] = True
    photo = Image.fromarray(np.where(truth[..., None], 40, 245).astype(np.uint8).repeat(3, axis=-1))
    coarse = np.asarray(Image.fromarray(truth.astype(np.float32), "F").resize((small, small), Image.BILINEAR))
    prob = box_mean(coarse, 1)  # a soft, slightly bloated edge, as a low-resolution model gives
    plain = np.asarray(Image.fromarray(prob.astype(np.float32), "F").resize((side, side), Image.BILINEAR)) > 0.5
    refined = refine(prob, photo, GuidedFilter(subsample=1, max_side=side))
    assert refined.shape == (side, side) and 0.0 <= refined.min() and refined.max() <= 1.0

    def iou(mask):
        return (mask & truth).sum() / (mask | truth).sum()

    assert iou(refined > 0.5) > 0.99
    assert iou(refined > 0.5) > iou(plain)


@pytest.mark.parametrize("change, message", [
    ({"method": "bilateral"}, "unknown refine method"),
    ({"radius": 0}, "radius >= 1"),
    ({"eps": 0}, "eps > 0"),
    ({"subsample": 0}, "subsample >= 1"),
])
def test_bad_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        GuidedFilter.from_dict({**GuidedFilter().as_dict(), **change})


def test_settings_round_trip_and_absent():
    cfg = GuidedFilter(3, 1e-3, subsample=1, max_side=64)
    assert GuidedFilter.from_dict(cfg.as_dict()) == cfg
    assert GuidedFilter.from_dict(None) is None


def test_refine_caps_the_photo_and_returns_its_size():
    """A photo larger than max_side is refined at max_side and the result upsampled: the edge stays close."""
    truth = np.zeros((300, 450), bool)
    truth[:, :200] = True
    photo = Image.fromarray(np.where(truth[..., None], 30, 240).astype(np.uint8).repeat(3, axis=-1))
    prob = np.asarray(Image.fromarray(truth.astype(np.float32), "F").resize((48, 32), Image.BILINEAR))
    out = refine(prob, photo, GuidedFilter(radius=1, subsample=2, max_side=150))
    assert out.shape == (300, 450)
    assert ((out > 0.5) != truth).sum() <= 2 * 300  # within a column or two of the edge
