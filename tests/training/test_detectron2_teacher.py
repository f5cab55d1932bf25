"""Detectron2 adapter conversion logic with a fabricated predictor output (detectron2 itself is not needed)."""
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from training.detectron2_teacher import COCO_IDS, Detectron2Config, Detectron2Teacher, instances_to_alpha

CLASSES = ("background", "couch", "chair", "bed", "vase", "bowl", "cup", "wine-glass", "potted-plant")


def fake_outputs(classes, scores, shape=(6, 8)):
    """Instances like DefaultPredictor returns: instance k's mask is row k."""
    masks = np.zeros((len(classes), *shape), bool)
    for k in range(len(classes)):
        masks[k, k] = True
    return {"instances": SimpleNamespace(pred_classes=np.array(classes), scores=np.array(scores), pred_masks=masks)}


@pytest.mark.parametrize("instances, scores, klass, expected_row", [
    ([COCO_IDS["chair"], COCO_IDS["chair"]], [0.8, 0.95], "chair", 1),  # top-scoring instance of the class
    ([COCO_IDS["couch"], COCO_IDS["chair"]], [0.99, 0.8], "chair", 1),  # other classes are ignored
    ([COCO_IDS["chair"]], [0.7], "chair", None),  # below 0.75: nothing
    ([COCO_IDS["chair"]], [0.75], "chair", 0),  # exactly the threshold counts
    ([0, COCO_IDS["vase"]], [0.99, 0.9], None, 1),  # no product class: best RoomFit class, never a person
    ([COCO_IDS["bed"]], [0.9], "couch", None),
])
def test_instances_to_alpha(instances, scores, klass, expected_row):
    alpha = instances_to_alpha(fake_outputs(instances, scores), klass, CLASSES, 0.75, (6, 8))
    assert alpha.dtype == np.float32 and alpha.shape == (6, 8)
    if expected_row is None:
        assert alpha.sum() == 0
    else:
        assert alpha[expected_row].all() and alpha.sum() == 8


def test_every_class_has_a_coco_id():
    assert set(COCO_IDS) == set(CLASSES[1:])


def test_teacher_feeds_bgr_and_returns_image_sized_alpha():
    seen = {}

    def predictor(bgr):
        seen["pixel"] = bgr[0, 0].tolist()
        return fake_outputs([COCO_IDS["cup"]], [0.9], shape=bgr.shape[:2])

    teacher = Detectron2Teacher(predictor, Detectron2Config(classes=CLASSES))
    alpha = teacher.mask(Image.new("RGB", (8, 6), (10, 20, 30)), "cup")
    assert seen["pixel"] == [30, 20, 10] and alpha.shape == (6, 8) and alpha[0].all()
