"""Small file helpers shared by the training modules."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.images import upright
from core.manifest import atomic_write_bytes  # noqa: F401  (re-exported: training writes through it)
from core.images import model_resize


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Atomically write an object as indented JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def atomic_save_png(path: str | Path, image: Image.Image) -> None:
    """Atomically save a Pillow image as PNG."""
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())


def open_upright(path: str | Path) -> Image.Image:
    """A photo as RGB, turned upright by its EXIF orientation (as labelling and the web app see it); a photo whose
    EXIF is broken stays as stored. Raises OSError (or a subclass) when the file is missing or not an image."""
    return open_turned(path)[0]


def open_turned(path: str | Path) -> tuple[Image.Image, bool]:
    """open_upright(path), and whether its EXIF orientation turned it (the pixels differ from the file's)."""
    with Image.open(path) as im:
        turned = upright(im)
        return turned.convert("RGB"), turned is not im


def model_input(photo: Image.Image, size: int) -> np.ndarray:
    """A photo as the web app feeds it to the model (core.images.model_resize: bilinear at pixel centres, like
    the training pipeline's tf.image.resize) at size×size, float32 0..255."""
    return np.asarray(model_resize(photo, (size, size)), dtype=np.float32)
