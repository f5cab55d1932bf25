"""The crawl's output folder: images by content hash, the append-only manifest and a resume log.

Layout of `--out`: `images/<sha256>.<ext>`, `manifest.jsonl` (one line per kept image, the shared contract) and
`crawl_state.jsonl` (product pages finished and image URLs settled, so a re-run skips them). An image file is
written (temp file + rename) before its manifest line, so a kill at any point loses nothing: at worst an image
file without a line, which the next run finds again and records.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .images import ImageInfo, phash_of, upright
from core.manifest import JsonlAppender, atomic_write_bytes, ManifestRecord, ManifestWriter, read_manifest, resolve_image_path

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
STATE_NAME = "crawl_state.jsonl"
_ASPECT_TOLERANCE = 0.03  # a resize keeps the aspect ratio; a crop or another product usually does not


@dataclass(frozen=True)
class _Fingerprint:
    phash: int
    aspect: float
    record_id: str


@dataclass
class StoreResult:
    """What happened to one image: saved (with its record), or a duplicate of an already kept image."""

    status: str  # "saved" | "duplicate" | "near_duplicate"
    record: ManifestRecord | None = None
    duplicate_of: str | None = None


class ImageStore:
    """Content-addressed image folder with exact and perceptual de-duplication and resumable bookkeeping."""

    def __init__(self, out_dir: str | Path, near_distance: int = 4):
        self.out_dir = Path(out_dir)
        self.images_dir = self.out_dir / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.out_dir / MANIFEST_NAME
        self.near_distance = near_distance
        self._by_sha: dict[str, str] = {}
        self._prints: list[_Fingerprint] = []
        self._image_urls: set[str] = set()
        self._done_pages: set[str] = set()
        self.resumed_records = 0
        self._load()
        self._manifest = ManifestWriter(self.manifest_path)
        self._state = JsonlAppender(self.out_dir / STATE_NAME)

    def _load(self) -> None:
        """Rebuild what a previous run kept from the resume log, the manifest and (if need be) the image files."""
        for stale in self.images_dir.glob(".*.tmp"):
            stale.unlink()  # atomic_write_bytes' temp file from a killed run: never renamed, so never recorded
        known_prints: dict[str, tuple[int, float]] = {}
        state = self.out_dir / STATE_NAME
        if state.exists():
            with open(state, encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a torn last line from a kill; the appender repairs it
                    if "page" in entry:
                        self._done_pages.add(entry["page"])
                    elif "image" in entry:
                        self._image_urls.add(entry["image"])
                        if "phash" in entry:
                            known_prints[entry["sha256"]] = (int(entry["phash"], 16), float(entry["aspect"]))
        if not self.manifest_path.exists():
            return
        for record in read_manifest(self.manifest_path):
            self._by_sha[record.sha256] = record.id
            if record.image_url:
                self._image_urls.add(record.image_url)
            self.resumed_records += 1
            if record.sha256 in known_prints:
                phash, aspect = known_prints[record.sha256]
                self._prints.append(_Fingerprint(phash, aspect, record.id))
                continue
            # Not in the log (killed between the two appends, or another tool's manifest): hash the file.
            path = resolve_image_path(self.manifest_path, record)
            try:
                with Image.open(path) as im:
                    turned = upright(im)
                    self._prints.append(_Fingerprint(phash_of(turned), turned.width / turned.height, record.id))
            except (OSError, UnidentifiedImageError) as exc:
                log.warning("manifest image %s unreadable (%s): exact duplicates still detected", path, exc)

    def close(self) -> None:
        """Close the manifest and the resume log."""
        self._manifest.close()
        self._state.close()

    def __enter__(self) -> "ImageStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def page_done(self, url: str) -> bool:
        """True when a previous run finished this product page."""
        return url in self._done_pages

    def mark_page_done(self, url: str) -> None:
        """Remember that every image of this product page is settled."""
        self._done_pages.add(url)
        self._state.append_line(json.dumps({"page": url}))

    def image_seen(self, url: str) -> bool:
        """True when this image URL was already saved, found duplicate or permanently rejected."""
        return url in self._image_urls

    def mark_image(self, url: str, status: str) -> None:
        """Remember an image URL that needs no second download (duplicate or permanently unusable)."""
        self._image_urls.add(url)
        self._state.append_line(json.dumps({"image": url, "status": status}))

    def _near(self, info: ImageInfo) -> str | None:
        """Id of a kept image that is the same picture at another size, if any."""
        aspect = info.width / info.height
        for fp in self._prints:
            if (fp.phash ^ info.phash).bit_count() <= self.near_distance and \
                    abs(fp.aspect - aspect) <= _ASPECT_TOLERANCE * aspect:
                return fp.record_id
        return None

    def add(self, data: bytes, info: ImageInfo, image_url: str, **meta: Any) -> StoreResult:
        """Keep an image unless it duplicates a kept one; `meta` are the other ManifestRecord fields."""
        sha = hashlib.sha256(data).hexdigest()
        if sha in self._by_sha:
            self.mark_image(image_url, "duplicate")
            return StoreResult("duplicate", duplicate_of=self._by_sha[sha])
        near = self._near(info)
        if near:
            self.mark_image(image_url, "near_duplicate")
            return StoreResult("near_duplicate", duplicate_of=near)
        final = self.images_dir / f"{sha}{info.ext}"
        atomic_write_bytes(final, data)
        record = ManifestRecord(id=sha[:16], path=os.path.relpath(final, self.out_dir), sha256=sha,
                                width=info.width, height=info.height, image_url=image_url,
                                fetched_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), **meta)
        self._manifest.append(record)
        aspect = info.width / info.height
        # The fingerprint goes to the resume log so a re-run need not decode every kept image again.
        self._state.append_line(json.dumps({"image": image_url, "status": "saved", "sha256": sha,
                                            "phash": f"{info.phash:016x}", "aspect": aspect}))
        self._by_sha[sha] = record.id
        self._prints.append(_Fingerprint(info.phash, aspect, record.id))
        self._image_urls.add(image_url)
        return StoreResult("saved", record=record)
