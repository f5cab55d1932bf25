"""Detectron2 teacher (COCO Mask R-CNN), as the original project used: keep the top-scoring instance of the product's
class with score ≥ 0.75. Used only when `detectron2` is importable (it is not installable on this machine: it needs a
source build against a matching torch; see README "Model")."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

# Detectron2's contiguous COCO ids (0..79) for the classes RoomFit uses.
COCO_IDS = {"chair": 56, "couch": 57, "potted-plant": 58, "bed": 59, "wine-glass": 40, "cup": 41, "bowl": 45,
            "vase": 75}
CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"


@dataclass
class Detectron2Config:
    """Mask R-CNN settings."""

    classes: tuple[str, ...]
    min_score: float = 0.75
    config: str = CONFIG
    device: str = "cpu"


def _as_numpy(x: Any) -> np.ndarray:
    """Tensor (torch, on any device) or array -> numpy."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def instances_to_alpha(outputs: dict, klass: str | None, classes: tuple[str, ...], min_score: float,
                       shape: tuple[int, int]) -> np.ndarray:
    """Alpha (float32 0/1, `shape`) of the top-scoring instance of `klass` (or of any RoomFit class when `klass` is
    None) scoring ≥ min_score; all zeros when no instance qualifies (the labeller then rejects the photo)."""
    inst = outputs["instances"]
    coco = {COCO_IDS[c] for c in ([klass] if klass is not None else classes) if c in COCO_IDS}
    if klass is not None and klass not in COCO_IDS:
        raise ValueError(f"class {klass!r} has no COCO counterpart")
    scores = _as_numpy(inst.scores).astype(np.float32)
    pred = _as_numpy(inst.pred_classes).astype(np.int64)
    ok = np.flatnonzero(np.isin(pred, list(coco)) & (scores >= min_score))
    alpha = np.zeros(shape, np.float32)
    if ok.size:
        best = ok[np.argmax(scores[ok])]
        alpha[_as_numpy(inst.pred_masks)[best].astype(bool)] = 1.0
    return alpha


class Detectron2Teacher:
    """Teacher protocol adapter around a detectron2 DefaultPredictor."""

    name = "detectron2"

    def __init__(self, predictor: Any, cfg: Detectron2Config):
        self.predictor = predictor
        self.cfg = cfg

    @classmethod
    def from_config(cls, classes: tuple[str, ...], min_score: float = 0.75) -> "Detectron2Teacher":
        """Build COCO Mask R-CNN R50-FPN 3x from the detectron2 model zoo (downloads its weights once)."""
        try:
            from detectron2 import model_zoo
            from detectron2.config import get_cfg
            from detectron2.engine import DefaultPredictor
        except ImportError as exc:
            raise ValueError("detectron2 is not installed (see README: it cannot be installed on this machine)") \
                from exc
        cfg = Detectron2Config(classes=classes, min_score=min_score)
        d2 = get_cfg()
        d2.merge_from_file(model_zoo.get_config_file(cfg.config))
        d2.MODEL.WEIGHTS = model_zoo.get_checkpoint_url(cfg.config)
        d2.MODEL.ROI_HEADS.SCORE_THRESH_TEST = min_score
        d2.MODEL.DEVICE = cfg.device
        return cls(DefaultPredictor(d2), cfg)

    def mask(self, image: Image.Image, klass: str | None = None) -> np.ndarray:
        """Alpha of the best instance of `klass` (any RoomFit class if None) in the photo."""
        bgr = np.asarray(image.convert("RGB"))[:, :, ::-1]  # DefaultPredictor expects BGR by default
        outputs = self.predictor(bgr)
        return instances_to_alpha(outputs, klass, self.cfg.classes, self.cfg.min_score, (image.height, image.width))
