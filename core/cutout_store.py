"""The on-disk format of catalogue cut-outs, shared by the web app's cache and the batch job that fills it ahead.

`<root>/<key>/<image sha256>.png` plus `<image sha256>.json` (the meta), where key is core.cutout.cutout_key (model
hash + matting version + glass flag). The JSON is written last: a present JSON means a complete entry, so it is also
the batch job's "done" marker. Where the bytes live (a local folder, an S3 prefix) is a Storage: core has the local
one; the batch job brings an fsspec one.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .manifest import atomic_write_bytes

log = logging.getLogger(__name__)


class Storage(Protocol):
    """Bytes by relative path ('/'-separated) under some root."""

    def read(self, rel: str) -> bytes:
        """The bytes at rel; FileNotFoundError when absent."""
        ...

    def write(self, rel: str, data: bytes) -> None:
        """Store bytes at rel atomically: a reader sees the old object or the whole new one."""
        ...

    def exists(self, rel: str) -> bool:
        """Whether rel holds an object."""
        ...


@dataclass(frozen=True)
class LocalStorage:
    """A local folder; writes go through a temp file and a rename."""

    root: Path

    def read(self, rel: str) -> bytes:
        """The file's bytes."""
        return (self.root / rel).read_bytes()

    def write(self, rel: str, data: bytes) -> None:
        """Atomic write (temp file + rename)."""
        atomic_write_bytes(self.root / rel, data)

    def exists(self, rel: str) -> bool:
        """Whether the file exists."""
        return (self.root / rel).is_file()


def entry_paths(image_sha256: str, key: str) -> tuple[str, str]:
    """Relative PNG and JSON paths of one entry."""
    return f"{key}/{image_sha256}.png", f"{key}/{image_sha256}.json"


@dataclass(frozen=True)
class CutoutStore:
    """Cut-out PNG plus its meta JSON per (photo, key)."""

    storage: Storage

    def get(self, image_sha256: str, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """The stored PNG and meta, or None when missing or unreadable (a damaged entry is logged)."""
        png_rel, meta_rel = entry_paths(image_sha256, key)
        try:
            meta = json.loads(self.storage.read(meta_rel).decode("utf-8"))
            return self.storage.read(png_rel), meta
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # ValueError: bad JSON or UTF-8
            log.warning("ignoring a damaged cut-out entry %s (%s)", meta_rel, exc)
            return None

    def has(self, image_sha256: str, key: str) -> bool:
        """Whether a complete entry is there (its JSON, written last)."""
        return self.storage.exists(entry_paths(image_sha256, key)[1])

    def put(self, image_sha256: str, key: str, png: bytes, meta: dict[str, Any]) -> None:
        """Store an entry; the JSON is written last so a present JSON implies a complete PNG."""
        png_rel, meta_rel = entry_paths(image_sha256, key)
        self.storage.write(png_rel, png)
        self.storage.write(meta_rel, json.dumps(meta).encode("utf-8"))
