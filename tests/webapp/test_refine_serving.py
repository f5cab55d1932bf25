"""Serving model.json's `refine` entry: loading it, refined masks through Segmenter, the guide photo, cache keys.
The /predict side is in test_predict.py."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.images import decode
from core.refine import GuidedFilter, fit_within
from core.segment import ModelError, ModelSpec, Segmenter

from .conftest import REFINE

EDGE_X = 283  # the product's right edge in edge_photo(): not on the tiny model's 10-pixel grid


def edge_photo(size=(560, 400)) -> Image.Image:
    """Left part dark (the product), right part white, a sharp vertical edge at EDGE_X."""
    arr = np.full((size[1], size[0], 3), 255, np.uint8)
    arr[:, :EDGE_X] = 20
    return Image.fromarray(arr)


def test_refine_entry_loads(model_dir, refine_model_dir):
    assert ModelSpec.load(refine_model_dir).refine == GuidedFilter(4, 1e-4, subsample=1, max_side=1024)
    assert ModelSpec.load(model_dir).refine is None  # absent: plain bilinear upsampling


@pytest.mark.parametrize("entry, message", [
    ("guided", "refine must be an object"),
    ({**REFINE, "method": "bilateral"}, "unknown refine method"),
    ({"method": "fast_guided_filter", "eps": 1e-4}, "radius"),
    ({**REFINE, "radius": "four"}, "four"),
    ({**REFINE, "eps": 0}, "eps > 0"),
    ({**REFINE, "max_side": 0}, "max_side >= 1"),
])
def test_bad_refine_entry_is_a_model_error(model_dir, with_refine, tmp_path, entry, message):
    bad = with_refine(model_dir, tmp_path / "bad", entry)
    with pytest.raises(ModelError, match=message) as info:
        ModelSpec.load(bad)
    assert "model.json: " in str(info.value) and "refine" in str(info.value)


def test_bad_refine_entry_makes_the_app_not_ready(make_app, model_dir, with_refine, tmp_path):
    bad = with_refine(model_dir, tmp_path / "bad", {"method": "bilateral"})
    resp = make_app(MODEL_DIR=str(bad)).test_client().get("/readyz")
    assert resp.status_code == 503 and "unknown refine method" in resp.get_json()["error"]["message"]


def predict_edge(spec: ModelSpec, refine_max_side: int, guide_side: int | None = None) -> tuple[np.ndarray, dict]:
    """The mask and timing of edge_photo() through a Segmenter, the guide made at guide_side (default: the cap)."""
    seg = Segmenter(spec, pool_size=1, refine_max_side=refine_max_side)
    photo = edge_photo()
    guide_side = seg.guide_side if guide_side is None else guide_side
    guide = photo.resize(fit_within(photo.size, guide_side)) if guide_side else None
    pred = seg.predict(photo.resize((spec.input_width, spec.input_height), Image.BILINEAR), photo.size, guide)
    [detection] = pred.detections
    assert detection.label == "chair"
    return np.asarray(pred.mask), pred.timing_ms


def test_refined_edge_snaps_to_the_photo_edge(refine_model_dir):
    """The tiny model sees the photo at 1/10 scale, so its probability is a ramp ~10 photo pixels wide; refined with
    the photo as guide the mask's edge is sharp and where the photo's edge is."""
    spec = ModelSpec.load(refine_model_dir)
    plain, plain_timing = predict_edge(spec, 0)
    refined, timing = predict_edge(spec, 1024)
    assert refined.shape == plain.shape == (400, 560)
    assert "refine" in timing and timing["refine"] >= 0 and "refine" not in plain_timing
    truth = np.zeros_like(refined, bool)
    truth[:, :EDGE_X] = True

    def wrong(mask: np.ndarray) -> int:
        return int(((mask >= 128) != truth).sum())

    def soft(mask: np.ndarray) -> int:
        return int(((mask > 0) & (mask < 255)).sum())

    assert wrong(refined) <= 400 < wrong(plain)  # at most one column off, against several
    assert soft(refined) < soft(plain) / 2
    # A guide smaller than the photo (capped long side): refined at its size, then upsampled to the photo's.
    small, _ = predict_edge(spec, 1024, guide_side=280)
    assert small.shape == (400, 560) and wrong(small) < wrong(plain)


def test_refine_max_side_zero_or_no_guide_is_plain_upsampling(model_dir, refine_model_dir):
    spec = ModelSpec.load(refine_model_dir)
    plain, _ = predict_edge(ModelSpec.load(model_dir), 1024)  # no refine entry: the cap does nothing
    off, _ = predict_edge(spec, 0, guide_side=1024)  # a guide given anyway is not used
    no_guide, _ = predict_edge(spec, 1024, guide_side=0)
    assert np.array_equal(off, plain) and np.array_equal(no_guide, plain)


def test_cache_key_covers_the_refinement(model_dir, refine_model_dir):
    """1.3.0 is 1.2.0's weights plus refine: cut-outs cached without it must not be served with it."""
    spec = ModelSpec.load(refine_model_dir)
    keys = {Segmenter(spec, refine_max_side=side).model_hash for side in (0, 512, 1024)}
    assert len(keys) == 3
    # Without a refine entry the cap changes nothing, so neither does the key.
    plain = ModelSpec.load(model_dir)
    assert Segmenter(plain, refine_max_side=1024).model_hash == Segmenter(plain, refine_max_side=0).model_hash
    with pytest.raises(ValueError, match="REFINE_MAX_SIDE"):
        Segmenter(spec, refine_max_side=-1)


@pytest.mark.parametrize("stored, orientation, need_full", [
    ((2400, 1800), 1, False), ((2400, 1800), 6, False), ((2400, 1800), 6, True), ((300, 200), 1, False),
])
def test_decode_makes_the_guide_upright_and_capped(stored, orientation, need_full):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.new("RGB", stored, "white").save(buf, "JPEG", exif=exif)
    data = buf.getvalue()
    d = decode(data, (56, 40), max_pixels=10**8, need_full=need_full, guide_side=512)
    upright = stored[::-1] if orientation == 6 else stored
    assert d.size == upright and d.guide.size == fit_within(upright, 512)
    assert max(d.guide.size) == min(512, max(stored))
    assert decode(data, (56, 40), max_pixels=10**8, need_full=need_full).guide is None


def test_every_interpreter_is_built_from_the_bytes_that_were_checked(model_dir, tmp_path):
    # The pool grows lazily: an interpreter built after the file was replaced (a new export landing while serving)
    # must still be the model whose sha256 was checked, not whatever is on disk now.
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    spec = ModelSpec.load(copy)
    seg = Segmenter(spec, pool_size=2)
    photo = Image.new("RGB", (spec.input_width, spec.input_height), "white")
    before = np.asarray(seg.predict(photo, photo.size).mask)
    spec.path.write_bytes(b"not a model any more")
    seg._pool.get_nowait()  # take the built interpreter away so the next predict builds another
    after = np.asarray(seg.predict(photo, photo.size).mask)
    assert np.array_equal(before, after)
    with pytest.raises(ModelError, match="sha256"):
        ModelSpec.load(copy)  # a fresh load does see the change
