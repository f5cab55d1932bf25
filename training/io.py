"""Small file helpers shared by the training modules."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from scraper.manifest import atomic_write_bytes  # noqa: F401  (re-exported: training writes through it)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Atomically write an object as indented JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def atomic_save_png(path: str | Path, image: Image.Image) -> None:
    """Atomically save a Pillow image as PNG."""
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())
