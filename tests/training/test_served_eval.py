"""The served-path evaluation: a tiny TFLite model through core's decoding, scored on hand-made photos."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.dataset import Item
from training.metrics import iou_per_class
from training.served_eval import answer, served_evaluation


def _photo(tmp_path, name, box, klass, split="test", collection="extra", background="white", kind="photo"):
    """A white photo with a dark box (the tiny model's chair) and its reference mask (class 1 inside `box`)."""
    image = np.full((64, 80, 3), 255, np.uint8)
    mask = np.zeros((64, 80), np.uint8)
    if box:
        x0, y0, x1, y1 = box
        image[y0:y1, x0:x1] = 20
        mask[y0:y1, x0:x1] = 1
    Image.fromarray(image).save(tmp_path / f"{name}.png")
    Image.fromarray(mask).save(tmp_path / f"{name}_mask.png")
    return Item(id=name, image=str(tmp_path / f"{name}.png"), mask=str(tmp_path / f"{name}_mask.png"), alpha="",
                klass=klass, split=split, collection=collection, background=background, kind=kind)


def test_a_served_answer_matches_the_reference(tiny_model_dir, tmp_path):
    from training.served_eval import build_segmenter

    seg = build_segmenter(tiny_model_dir)
    got = answer(seg, _photo(tmp_path, "a", (20, 16, 60, 48), "chair"))
    assert got.label == "chair"
    assert iou_per_class(got.fg)[1] > 0.8  # foreground IoU of a sharp box through the served path
    blank = answer(seg, _photo(tmp_path, "b", None, None, kind="negative"))
    assert blank.label is None and not blank.fg.any()


def test_served_evaluation_blocks(tiny_model_dir, tmp_path):
    items = [
        _photo(tmp_path, "c1", (20, 16, 60, 48), "chair", background="scene"),
        _photo(tmp_path, "c2", (10, 10, 40, 40), "couch", background="white"),  # the tiny model only knows chairs
        _photo(tmp_path, "i1", (20, 16, 60, 48), "chair", collection="ikea"),
        _photo(tmp_path, "n1", None, None, collection="negative", kind="negative"),
        _photo(tmp_path, "n2", (0, 0, 80, 64), None, collection="negative", kind="negative"),  # all dark: a "product"
        _photo(tmp_path, "t1", (20, 16, 60, 48), "chair", split="train"),  # not scored
    ]
    out = served_evaluation(tiny_model_dir, items)
    assert out["cross_shop"]["overall"]["images"] == 2
    assert out["cross_shop"]["overall"]["category_accuracy"] == pytest.approx(0.5)
    assert out["cross_shop"]["scene"]["category_accuracy"] == 1.0
    assert out["cross_shop"]["white"]["category_accuracy"] == 0.0
    assert out["ikea"]["images"] == 1 and out["ikea"]["foreground_iou"] > 0.8
    assert out["category_both"]["images"] == 3 and out["category_both"]["category_accuracy"] == pytest.approx(2 / 3)
    assert out["negatives"]["images"] == 2 and out["negatives"]["with_product"] == 1
    assert out["negatives"]["false_positive_rate"] == 0.5
