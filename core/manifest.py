"""The manifest.jsonl contract shared by the scraper, the dataset importer, training and the web app.

One JSON object per line, one product image per line. `path` is relative to the manifest's folder (or absolute).
Lines are appended whole and flushed, so a crash leaves at most one torn last line, which readers skip.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

_NUM = r"(\d+(?:[.,]\d+)?)"
_UNIT_TO_CM = {"mm": 0.1, "cm": 1.0, "m": 100.0, "in": 2.54, '"': 2.54}


@dataclass
class Dimensions:
    """Product dimensions as the shop wrote them, plus what could be parsed into centimetres."""

    text: str | None = None
    width_cm: float | None = None
    depth_cm: float | None = None
    height_cm: float | None = None
    diameter_cm: float | None = None


@dataclass
class ManifestRecord:
    """One product image: where it is, what it is, and where it came from."""

    id: str
    path: str
    sha256: str
    width: int
    height: int
    category: str | None = None
    klass: str | None = None  # serialised as "class"
    title: str | None = None
    sku: str | None = None
    dimensions: Dimensions = field(default_factory=Dimensions)
    image_url: str | None = None
    page_url: str | None = None
    source: str | None = None
    fetched_at: str | None = None

    def to_json(self) -> str:
        """Serialise to one manifest line (no trailing newline)."""
        d = asdict(self)
        d["class"] = d.pop("klass")
        return json.dumps(d, ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ManifestRecord":
        """Build a record from a parsed manifest line; unknown keys are ignored."""
        d = dict(d)
        d["klass"] = d.pop("class", None)
        dims = d.get("dimensions") or {}
        d["dimensions"] = Dimensions(**{k: dims.get(k) for k in Dimensions.__dataclass_fields__})
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def parse_dimensions(text: str | None) -> Dimensions:
    """Parse shop size text such as '90x200 cm', 'Ø20 cm', 'W 80 x D 35 x H 120 cm' or '31 1/2"' into cm."""
    dims = Dimensions(text=text or None)
    if not text:
        return dims
    t = text.lower().replace("×", "x").replace(",", ".")
    unit_m = re.search(r'(mm|cm|m\b|in\b|inches|")', t)
    unit = unit_m.group(1) if unit_m else "cm"
    scale = _UNIT_TO_CM.get("in" if unit == "inches" else unit, 1.0)
    # Labelled values first (W/D/H, width/depth/height, Ø diameter).
    labelled = {
        "width_cm": r"(?:\bw(?:idth)?\b|\bl(?:ength)?\b)\s*:?\s*" + _NUM,
        "depth_cm": r"\bd(?:epth)?\b\s*:?\s*" + _NUM,
        "height_cm": r"\bh(?:eight)?\b\s*:?\s*" + _NUM,
        "diameter_cm": r"(?:ø|⌀|\bdiam(?:eter)?\b)\s*:?\s*" + _NUM,
    }
    found = False
    for key, pat in labelled.items():
        m = re.search(pat, t)
        if m:
            setattr(dims, key, round(float(m.group(1)) * scale, 2))
            found = True
    if found:
        return dims
    nums = [float(n) * scale for n in re.findall(r"\d+(?:\.\d+)?", t.split("/")[0] if "/" in t else t)]
    if "x" in t and len(nums) >= 2:
        # Shops write width x depth (x height) for furniture footprints.
        for key, value in zip(("width_cm", "depth_cm", "height_cm"), nums):
            setattr(dims, key, round(value, 2))
    # A single unlabelled number ("80 cm") is a width for a shelf but a height for a vase: don't guess, keep the text.
    return dims


# A lone size ("20 cm") means different things by product type: the diameter of round things, the height of a vase.
# Matched against the lower-cased shop category; types not listed keep the text only (a shelf's "80 cm" is its width,
# a lamp's its height: no guessing).
_SINGLE_SIZE_BY_TYPE = (("vase", "height_cm"), ("bowl", "diameter_cm"), ("plant pot", "diameter_cm"),
                        ("plate", "diameter_cm"), ("pot", "diameter_cm"))
# Volumes ("30 cl", "0.5 l") are capacities, not sizes.
_VOLUME = re.compile(r"\d\s*(?:cl|ml|dl|l|litre|liter|oz)\b", re.IGNORECASE)


def parse_product_size(text: str | None, category: str | None) -> Dimensions:
    """parse_dimensions, plus a lone size read by product type (diameter of a bowl or pot, height of a vase);
    volumes such as '30 cl' give no size."""
    if text and _VOLUME.search(text):
        return Dimensions(text=text)
    dims = parse_dimensions(text)
    if any((dims.width_cm, dims.depth_cm, dims.height_cm, dims.diameter_cm)) or not text:
        return dims
    m = re.fullmatch(r"\s*(\d+(?:[.,]\d+)?)\s*cm\s*", text)
    kind = (category or "").lower()
    key = next((k for word, k in _SINGLE_SIZE_BY_TYPE if word in kind), None)
    if m and key:
        setattr(dims, key, float(m.group(1).replace(",", ".")))
    return dims


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes to a temp file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates owner-only files; outputs are read by other users (the container's non-root app user).
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_manifest(path: str | Path) -> Iterator[ManifestRecord]:
    """Yield the records of a manifest; a torn or invalid line is logged and skipped, never fatal."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield ManifestRecord.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError, KeyError) as exc:
                log.warning("%s:%d: skipping bad manifest line (%s)", path, lineno, exc)


def resolve_image_path(manifest_path: str | Path, record: ManifestRecord) -> Path:
    """Absolute path of a record's image (paths are relative to the manifest's folder)."""
    p = Path(record.path)
    return p if p.is_absolute() else (Path(manifest_path).resolve().parent / p)


class JsonlAppender:
    """Append-only JSON-lines file: one complete, flushed and fsynced line per append; a torn tail is repaired."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._f = open(self.path, "a", encoding="utf-8")

    def _repair_tail(self) -> None:
        """Drop a torn last line left by a crash so the next append starts on a fresh line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if data.endswith(b"\n"):
                return
            cut = data.rfind(b"\n") + 1
            log.warning("%s: removing a torn last line (%d bytes)", self.path, len(data) - cut)
            f.truncate(cut)

    def append_line(self, line: str) -> None:
        """Write one line (no newline inside) and make it durable."""
        self._f.write(line + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        """Close the underlying file."""
        self._f.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ManifestWriter(JsonlAppender):
    """Append-only manifest writer: one complete, flushed and fsynced line per record."""

    def append(self, record: ManifestRecord) -> None:
        """Write one record as a whole line and make it durable."""
        self.append_line(record.to_json())

    def __enter__(self) -> "ManifestWriter":
        return self
