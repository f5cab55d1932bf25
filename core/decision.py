"""The served "is there a product, and which" decision (model.json's optional `decision` entry), shared by training
(which chooses the thresholds on validation) and the web app (which applies them). numpy only.

Per image, at the model's output resolution: `area` is the share of pixels whose foreground probability
(1 − softmax background) exceeds 0.5, `product_score` their mean foreground probability (0 when there are none), and
`class_score` the mean probability of the dominant class over the pixels it wins. No product when area < min_area or
product_score < min_score; a product whose class_score is below class_threshold is reported as uncertain.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

UNKNOWN = "unknown"  # the label of a product whose class is uncertain


@dataclass(frozen=True)
class Decision:
    """Thresholds chosen on validation (training.calibrate.choose_decision)."""

    min_area: float = 0.0
    min_score: float = 0.0
    class_threshold: float = 0.0

    @classmethod
    def from_dict(cls, entry: dict[str, Any] | None) -> "Decision | None":
        """model.json's `decision` entry (None: absent); ValueError when a value is not a number in [0, 1]."""
        if entry is None:
            return None
        if not isinstance(entry, dict):
            raise TypeError(f"decision must be an object, got {entry!r}")
        values = {k: float(entry[k]) for k in cls.__dataclass_fields__ if k in entry}
        for key, value in values.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"decision {key} must be in [0, 1], got {value}")
        return cls(**values)

    def as_dict(self) -> dict[str, float]:
        """The JSON form written into model.json."""
        return {k: round(v, 4) for k, v in asdict(self).items()}

    def has_product(self, area: float, product_score: float) -> bool:
        """Whether the image shows a product at all."""
        return area >= self.min_area and product_score >= self.min_score

    def certain(self, class_score: float) -> bool:
        """Whether the product's class may be named."""
        return class_score >= self.class_threshold


def product_evidence(fg: np.ndarray) -> tuple[float, float]:
    """(area, product_score) of a foreground probability map (model resolution)."""
    solid = np.asarray(fg) > 0.5
    if not solid.any():
        return 0.0, 0.0
    return float(solid.mean()), float(np.asarray(fg)[solid].mean())
