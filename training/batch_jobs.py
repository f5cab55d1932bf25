"""The two batch jobs (training.batch): teacher alphas into the label cache, and catalogue cut-outs into the web
app's cut-out store. Items are plain dicts (id, uri, sha256, …) so they travel to Ray actors as table rows."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from core import cutout
from core.cutout_store import CutoutStore
from core.images import upright
from core.manifest import ManifestRecord, resolve_image_path
from core.segment import ModelSpec, Segmenter

from .batch import BatchSummary, EngineConfig, FsStorage, read_bytes, run
from .label import LabelConfig, LabelSummary, label_manifest, pending_records
from .label_cache import encode_alpha
from .teacher import Teacher

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def per_item(batch: dict[str, Any], columns: tuple[str, ...], read: Callable[[str], bytes],
             work: Callable[..., None], expected: tuple[type[BaseException], ...]) -> dict[str, list[Any]]:
    """Run work(read(uri), *columns) for each item of a batch; an `expected` error fails that item alone (status
    failed, the error), anything else stops the run."""
    result: dict[str, list[Any]] = {"id": [], "status": [], "error": []}
    for n, pid in enumerate(batch["id"]):
        # Columns arrive as numpy arrays on Ray: back to plain str/bool.
        values = [batch[c][n].item() if hasattr(batch[c][n], "item") else batch[c][n] for c in columns]
        error = ""
        try:
            work(read(str(batch["uri"][n])), *values)
        except expected as exc:
            error = f"{type(exc).__name__}: {exc}"
        result["id"].append(str(pid))
        result["status"].append("failed" if error else "ok")
        result["error"].append(error)
    return result


# ---- items ----

def _join(base: str, path: str) -> str:
    """A manifest path resolved against the manifest's folder (a local folder or a URL prefix)."""
    if "://" in path or path.startswith("/"):
        return path
    return posixpath.join(base, path) if "://" in base else str(Path(base) / path)


def manifest_records(manifest: str, storage_options: dict[str, Any] | None = None) -> list[tuple[ManifestRecord, str]]:
    """(record, photo URI) of a manifest.jsonl (local or s3://); torn or bad lines are skipped and logged."""
    text = read_bytes(manifest, storage_options).decode("utf-8")
    base = posixpath.dirname(manifest) if "://" in manifest else str(Path(manifest).resolve().parent)
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = ManifestRecord.from_dict(json.loads(line))
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            log.warning("%s:%d: skipping bad manifest line (%s)", manifest, lineno, exc)
            continue
        out.append((record, _join(base, record.path)))
    return out


def folder_records(prefix: str, storage_options: dict[str, Any] | None = None) -> list[tuple[ManifestRecord, str]]:
    """(record, URI) of every photo under a folder or S3 prefix, hashed here (id: the file name's stem)."""
    storage = FsStorage(prefix, storage_options)
    out = []
    for rel in sorted(storage.listing("")):
        if not rel.lower().endswith(IMAGE_SUFFIXES):
            continue
        data = storage.read(rel)
        stem = posixpath.splitext(posixpath.basename(rel))[0]
        out.append((ManifestRecord(id=stem, path=rel, sha256=hashlib.sha256(data).hexdigest(), width=0, height=0),
                    f"{storage.url.rstrip('/')}/{rel}"))
    return out


def source_records(source: str, storage_options: dict[str, Any] | None = None) -> list[tuple[ManifestRecord, str]]:
    """Records of a manifest (*.jsonl) or of a folder / S3 prefix of photos."""
    if source.endswith(".jsonl"):
        return manifest_records(source, storage_options)
    return folder_records(source, storage_options)


# ---- catalogue cut-outs ----

@dataclass(frozen=True)
class ServingSettings:
    """The web app's model settings (webapp.config defaults): batch cut-outs must be made as it makes them, or their
    key (and bytes) differ from what it looks up."""

    threshold: float = 0.5  # MASK_THRESHOLD
    min_area: float = 0.005  # MIN_PRODUCT_AREA
    refine_max_side: int = 1024  # REFINE_MAX_SIDE
    max_image_pixels: int = cutout.MAX_IMAGE_PIXELS  # MAX_IMAGE_PIXELS
    max_output_pixels: int = cutout.DecodeLimits().max_output_pixels  # MAX_OUTPUT_PIXELS

    def segmenter(self, model_dir: str) -> Segmenter:
        """The served session for model_dir (one interpreter, one thread: a batch worker is one core)."""
        return Segmenter(ModelSpec.load(model_dir), num_threads=1, pool_size=1, threshold=self.threshold,
                         min_area=self.min_area, refine_max_side=self.refine_max_side)


def cutout_items(records: list[tuple[ManifestRecord, str]]) -> list[dict[str, Any]]:
    """Cut-out items: the photo, its hash and whether the web app treats it as glass (as webapp.catalogue does)."""
    return [{"id": r.id, "uri": uri, "sha256": r.sha256,
             "glass": cutout.is_glass(r.title or r.sku or r.id, r.category, r.klass)} for r, uri in records]


def cutouts_done(model_dir: str, settings: ServingSettings, out: FsStorage) -> Callable[[dict[str, Any]], bool]:
    """Whether an item's cut-out is already in the store (its JSON, written last), from one listing per key."""
    model_hash = settings.segmenter(model_dir).model_hash  # reads model.json + the file's hash; no interpreter
    present: dict[str, set[str]] = {}

    def done(item: dict[str, Any]) -> bool:
        key = cutout.cutout_key(model_hash, bool(item["glass"]))
        if key not in present:
            present[key] = out.listing(key)
        return f"{key}/{item['sha256']}.json" in present[key]

    return done


class CutoutJob:
    """Batch callable: catalogue cut-outs with the served model and post-processing, into a CutoutStore."""

    def __init__(self, model_dir: str, out: FsStorage, settings: ServingSettings = ServingSettings(),
                 storage_options: dict[str, Any] | None = None) -> None:
        self.seg = settings.segmenter(model_dir)
        self.seg.warm_up()
        self.limits = cutout.DecodeLimits(settings.max_image_pixels, settings.max_output_pixels)
        self.store = CutoutStore(out)
        self.storage_options = storage_options

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """Make and store the cut-out of each photo in the batch."""
        # OSError: an unreadable photo or a failed write; ValueError: bytes that are no usable image (ImageError).
        return per_item(batch, ("sha256", "glass"), self.read, self.one, (OSError, ValueError))

    def one(self, data: bytes, sha: str, glass: bool) -> None:
        """One photo's cut-out, stored under the web app's key."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            # The web app keys the cut-out by the manifest's hash: a stale line must not get a wrong entry.
            raise ValueError(f"sha256 {actual[:12]}… does not match the manifest's {sha[:12]}…")
        png, meta = cutout.make_cutout(self.seg, data, glass=glass, limits=self.limits)
        self.store.put(sha, cutout.cutout_key(self.seg.model_hash, glass), png, meta)

    def read(self, uri: str) -> bytes:
        """A photo's bytes."""
        return read_bytes(uri, self.storage_options)


# ---- teacher labels ----

def label_cache_rel(teacher: str, sha256: str) -> str:
    """A label cache entry's path relative to the cache root (training.label_cache layout)."""
    return f"{teacher}/{sha256[:2]}/{sha256}.png"


def label_items(records: list[tuple[ManifestRecord, str]]) -> list[dict[str, Any]]:
    """Labelling items: the photo, its hash and the shop's class (for teachers that detect by class)."""
    return [{"id": r.id, "uri": uri, "sha256": r.sha256, "klass": r.klass or ""} for r, uri in records]


def labels_done(teacher: str, cache: FsStorage) -> Callable[[dict[str, Any]], bool]:
    """Whether an item's alpha is already in the label cache (one listing of the teacher's folder)."""
    present = cache.listing(teacher)
    return lambda item: label_cache_rel(teacher, item["sha256"]) in present


class LabelJob:
    """Batch callable: the teacher's soft alpha of each photo into the label cache (by content hash)."""

    def __init__(self, teacher_factory: Callable[[], Teacher], cache: FsStorage,
                 storage_options: dict[str, Any] | None = None) -> None:
        self.teacher = teacher_factory()
        self.cache = cache
        self.storage_options = storage_options

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """Label each photo of the batch and store its alpha."""
        # As label_one: a photo that cannot be read or decoded fails alone.
        return per_item(batch, ("sha256", "klass"), self.read, self.one,
                        (OSError, ValueError, SyntaxError, EOFError))

    def one(self, data: bytes, sha: str, klass: str) -> None:
        """One photo's alpha into the cache."""
        # As training.io.open_turned: upright by EXIF, RGB; the cache holds alphas of the upright photo.
        with Image.open(io.BytesIO(data)) as im:
            image = upright(im).convert("RGB")
        alpha = np.asarray(self.teacher.mask(image, klass or None), dtype=np.float32)
        self.cache.write(label_cache_rel(self.teacher.name, sha), encode_alpha(alpha))

    def read(self, uri: str) -> bytes:
        """A photo's bytes."""
        return read_bytes(uri, self.storage_options)


class LazyTeacher:
    """A teacher built on its first mask(): the pass that builds masks from a filled cache needs none."""

    def __init__(self, factory: Callable[[], Teacher], name: str) -> None:
        self.name = name
        self._factory = factory
        self._teacher: Teacher | None = None

    def mask(self, image: Image.Image, klass: str | None = None) -> np.ndarray:
        """The teacher's alpha (building the teacher now if needed)."""
        if self._teacher is None:
            log.info("label cache miss: building the %s teacher in this process", self.name)
            self._teacher = self._factory()
        return self._teacher.mask(image, klass)


@dataclass(frozen=True)
class Remote:
    """Where cluster workers read the photos and write the alphas when they cannot see this machine's disk."""

    photo_root: str | None = None  # replaces the manifest's folder in photo paths (e.g. s3://bucket/ikea)
    cache_url: str | None = None  # the label cache the workers fill (e.g. s3://bucket/label-cache); copied back
    storage_options: dict[str, Any] | None = None


def fill_label_cache(cfg: LabelConfig, teacher_factory: Callable[[], Teacher], teacher_name: str,
                     engine: EngineConfig, remote: Remote = Remote()) -> BatchSummary:
    """Teacher alphas of the photos label_manifest will label next, into cfg.cache, on the chosen engine."""
    if cfg.cache is None:
        raise ValueError("batch labelling fills the label cache: give a cache folder")
    todo, _ = pending_records(cfg)
    local = FsStorage(cfg.cache)
    cache = FsStorage(remote.cache_url, remote.storage_options) if remote.cache_url else local

    def uri(record: ManifestRecord) -> str:
        if remote.photo_root and "://" not in record.path and not Path(record.path).is_absolute():
            return _join(remote.photo_root, record.path)
        return str(resolve_image_path(cfg.manifest, record))

    # Already here (this machine's cache) or there (the workers'): not sent again.
    here, there = labels_done(teacher_name, local), labels_done(teacher_name, cache)
    summary = run(LabelJob, {"teacher_factory": teacher_factory, "cache": cache,
                             "storage_options": remote.storage_options}, label_items([(r, uri(r)) for r in todo]),
                  engine, done=lambda item: here(item) or there(item), desc=f"teacher ({teacher_name})")
    if cache is not local:
        # The masks are built here from this machine's cache: bring the workers' new entries over.
        present = cache.listing(teacher_name)
        for record in todo:
            rel = label_cache_rel(teacher_name, record.sha256)
            if rel in present and not local.exists(rel):
                local.write(rel, cache.read(rel))
    return summary


def label_with_engine(cfg: LabelConfig, teacher_factory: Callable[[], Teacher], teacher_name: str,
                      engine: EngineConfig, remote: Remote = Remote()) -> tuple[BatchSummary, LabelSummary]:
    """Both engines label the same way: the teacher fills the label cache (in-process or on Ray), then masks,
    alphas and labels.jsonl are built from the cache here with no teacher call."""
    filled = fill_label_cache(cfg, teacher_factory, teacher_name, engine, remote)
    return filled, label_manifest(cfg, LazyTeacher(teacher_factory, teacher_name))


def make_cutouts(source: str, out: str, model_dir: str, engine: EngineConfig,
                 settings: ServingSettings = ServingSettings(),
                 storage_options: dict[str, Any] | None = None) -> BatchSummary:
    """Catalogue cut-outs of every photo of a manifest / folder / S3 prefix into `out` (the web app's CACHE_DIR
    layout), skipping those already there."""
    store = FsStorage(out, storage_options)
    items = cutout_items(source_records(source, storage_options))
    return run(CutoutJob, {"model_dir": model_dir, "out": store, "settings": settings,
                           "storage_options": storage_options}, items, engine,
               done=cutouts_done(model_dir, settings, store), desc="cut-outs")
