"""On-disk cache of catalogue cut-outs, keyed by the photo's sha256 and the model's hash."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.manifest import atomic_write_bytes

log = logging.getLogger(__name__)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class CutoutCache:
    """Cut-out PNG plus its detection JSON per (image, model) pair."""

    root: Path

    def _paths(self, image_sha256: str, model_hash: str) -> tuple[Path, Path]:
        """PNG and JSON paths of one entry."""
        folder = self.root / model_hash
        return folder / f"{image_sha256}.png", folder / f"{image_sha256}.json"

    def get(self, image_sha256: str, model_hash: str) -> tuple[bytes, dict[str, Any]] | None:
        """The cached PNG and detection info, or None when missing or unreadable."""
        png_path, meta_path = self._paths(image_sha256, model_hash)
        try:
            return png_path.read_bytes(), json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("ignoring a damaged cache entry %s (%s)", meta_path, exc)
            return None

    def put(self, image_sha256: str, model_hash: str, png: bytes, meta: dict[str, Any]) -> None:
        """Store an entry; the JSON is written last so a present JSON implies a complete PNG."""
        png_path, meta_path = self._paths(image_sha256, model_hash)
        try:
            atomic_write_bytes(png_path, png)
            atomic_write_bytes(meta_path, json.dumps(meta).encode("utf-8"))
        except OSError as exc:
            # A read-only or full disk costs speed, not correctness: serve the freshly computed cut-out anyway.
            log.warning("could not cache cut-out in %s (%s)", self.root, exc)
