"""Tiny synthetic labelled data set: coloured squares on white, with masks and alpha like `training label` writes."""
import json

import numpy as np
import pytest
from PIL import Image

from core.manifest import ManifestRecord, ManifestWriter

CLASSES = ("background", "couch", "chair")
COLOURS = {"couch": (255, 0, 0), "chair": (0, 0, 255), None: (0, 160, 0)}


def make_photo(klass, size=48, offset=0):
    """A white photo with a class-coloured rectangle, its mask (class id / 255) and alpha."""
    image = np.full((size, size, 3), 255, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    y0, y1, x0, x1 = 8 + offset, size - 12 + offset, 6 + offset, size // 2 + 4 + offset  # asymmetric: flips show
    image[y0:y1, x0:x1] = COLOURS[klass]
    mask[y0:y1, x0:x1] = CLASSES.index(klass) if klass else 255
    return image, mask, (mask > 0).astype(np.uint8) * 255


@pytest.fixture
def tiny_data(tmp_path):
    """manifest.jsonl + labels/ for 10 couches, 10 chairs and 5 unclassed products."""
    (tmp_path / "img").mkdir()
    labels = tmp_path / "labels"
    (labels / "masks").mkdir(parents=True)
    (labels / "alpha").mkdir()
    manifest = tmp_path / "manifest.jsonl"
    entries = []
    with ManifestWriter(manifest) as w:
        for n, klass in enumerate(["couch"] * 10 + ["chair"] * 10 + [None] * 5):
            pid = f"p{n:02d}"
            image, mask, alpha = make_photo(klass, offset=n % 3)
            Image.fromarray(image).save(tmp_path / "img" / f"{pid}.jpg", quality=95)
            Image.fromarray(mask).save(labels / "masks" / f"{pid}.png")
            Image.fromarray(alpha).save(labels / "alpha" / f"{pid}.png")
            w.append(ManifestRecord(id=pid, path=f"img/{pid}.jpg", sha256="0" * 64, width=48, height=48, klass=klass))
            entries.append({"id": pid, "status": "ok", "reason": None, "class": klass, "teacher": "fake"})
    (labels / "labels.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return manifest, labels
