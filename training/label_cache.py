"""A compact, committed cache of the teacher's soft masks, so a new machine re-labels without hours of teacher time.

One 4-bit greyscale PNG per photo under `root/<sha256[:2]>/<sha256>.png`, keyed by the photo file's content hash
(the manifest's `sha256`): the same photo under another id or source is labelled once, and a changed photo is never
served a stale mask. 16 alpha levels keep the 0.5 threshold exact (level >= 8 <=> alpha > 0.5, ties aside) and the
soft edge the distillation loss reads, at ~5.6 kB per photo (the 8-bit alpha PNGs are ~18.5 kB).
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from core.manifest import atomic_write_bytes

log = logging.getLogger(__name__)

LEVELS = 15  # 4 bits
_PALETTE = [round(v * 255 / LEVELS) for v in range(LEVELS + 1) for _ in range(3)]


def encode_alpha(alpha: np.ndarray) -> bytes:
    """Soft alpha (float 0..1, H×W) as a 4-bit palette PNG."""
    levels = np.clip(np.rint(np.asarray(alpha, dtype=np.float32) * LEVELS), 0, LEVELS).astype(np.uint8)
    image = Image.fromarray(levels, mode="P")
    image.putpalette(_PALETTE)
    buf = io.BytesIO()
    image.save(buf, format="PNG", bits=4, optimize=True)
    return buf.getvalue()


def decode_alpha(data: bytes) -> np.ndarray:
    """The float32 alpha (0..1) of a cache entry."""
    with Image.open(io.BytesIO(data)) as image:
        if image.mode != "P":
            raise ValueError(f"label cache entry has mode {image.mode}, expected a 4-bit palette PNG")
        return np.asarray(image, dtype=np.float32) / LEVELS


class LabelCache:
    """Teacher alphas by photo content hash (get/put); writes are atomic, a damaged entry is a miss."""

    def __init__(self, root: str | Path, teacher: str = "isnet"):
        self.root = Path(root) / teacher  # a different teacher's masks never answer for this one

    def path(self, sha256: str) -> Path:
        """Where the entry for a photo hash lives."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}.png"

    def get(self, sha256: str, size: tuple[int, int]) -> np.ndarray | None:
        """The cached alpha for a photo of `size` (w, h), or None when absent, damaged or of another size."""
        path = self.path(sha256)
        if not path.is_file():
            return None
        try:
            alpha = decode_alpha(path.read_bytes())
        except (OSError, ValueError, SyntaxError) as exc:
            log.warning("%s: damaged label cache entry, relabelling (%s)", path, exc)
            return None
        if alpha.shape != (size[1], size[0]):
            log.warning("%s: cached alpha is %s, the photo %s; relabelling", path, alpha.shape[::-1], size)
            return None
        return alpha

    def put(self, sha256: str, alpha: np.ndarray) -> None:
        """Store a photo's alpha."""
        atomic_write_bytes(self.path(sha256), encode_alpha(alpha))


def fill_from_labels(manifest: Path, labels: Path, cache: LabelCache) -> tuple[int, int]:
    """Copy the alphas of an existing labels folder (alpha/<id>.png, 8-bit) into the cache; returns (added, present).

    For labels made before the cache existed, or on another machine: the teacher's work is kept, not redone."""
    from core.manifest import read_manifest

    from .label import read_index

    entries = read_index(labels / "labels.jsonl")
    added = present = 0
    for record in read_manifest(manifest):
        alpha_png = labels / "alpha" / f"{record.id}.png"
        if entries.get(record.id, {}).get("status") != "ok" or not alpha_png.is_file():
            continue
        if cache.path(record.sha256).is_file():
            present += 1
            continue
        with Image.open(alpha_png) as image:
            cache.put(record.sha256, np.asarray(image.convert("L"), dtype=np.float32) / 255.0)
        added += 1
    return added, present
