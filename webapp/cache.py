"""The web app's cut-out cache: core.cutout_store's layout in CACHE_DIR, keyed by the photo's sha256 and cutout_key.

A batch run (`python -m training cutouts`) writes the same layout, so CACHE_DIR may point at its output folder (or a
synced copy of its S3 prefix): precomputed cut-outs are served with no model call.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from core.cutout_store import CutoutStore, LocalStorage

log = logging.getLogger(__name__)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class CutoutCache:
    """Cut-out PNG plus its detection JSON per (image, key) pair, in a local folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._store = CutoutStore(LocalStorage(self.root))

    def get(self, image_sha256: str, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """The cached PNG and detection info, or None when missing or unreadable."""
        return self._store.get(image_sha256, key)

    def put(self, image_sha256: str, key: str, png: bytes, meta: dict[str, Any]) -> None:
        """Store an entry (JSON last); a failed write is logged, not raised."""
        try:
            self._store.put(image_sha256, key, png, meta)
        except OSError as exc:
            # A read-only or full disk costs speed, not correctness: serve the freshly computed cut-out anyway.
            log.warning("could not cache cut-out in %s (%s)", self.root, exc)
