"""The served segmentation session: reads models/model.json, verifies the TFLite file and predicts product masks.

Shared by the web app and the batch cut-out job, so both make the same masks. Built once per worker (or batch
actor); the TFLite interpreter itself is not thread-safe, so threads borrow interpreters from a small pool, built
lazily on first use and kept for the worker's life.
"""
from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .decision import UNKNOWN, Decision, product_evidence
from .refine import GuidedFilter, refine

log = logging.getLogger(__name__)

GENERIC_CLASS = "other"
# Width of the soft edge: probabilities within +-FEATHER of the threshold ramp from transparent to opaque.
FEATHER = 0.15


# How a photo becomes the model's input (core.images.model_resize); part of the cache key of served cut-outs.
PREPROCESSING = "bilinear-centres"


class ModelError(RuntimeError):
    """The model folder is missing, malformed or does not match its checksum."""


@dataclass(frozen=True)
class ModelSpec:
    """What model.json promises about the serving model."""

    name: str
    version: str
    classes: tuple[str, ...]
    input_height: int
    input_width: int
    path: Path
    sha256: str
    refine: GuidedFilter | None = None  # edge-aware upsampling of the foreground; None: plain bilinear
    decision: Decision | None = None  # "no product" / uncertain-class thresholds; None: 1.x behaviour
    # The serving file's bytes, read once and checked against sha256: every interpreter is built from them, so one
    # that is built later (the pool grows lazily) cannot pick up a different file written meanwhile.
    content: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def load(cls, model_dir: str | Path) -> "ModelSpec":
        """Read and validate model.json and verify the serving file's sha256."""
        model_dir = Path(model_dir)
        meta_path = model_dir / "model.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(f"no model: {meta_path} not found") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{meta_path}: unreadable ({exc})") from exc
        try:
            entry = meta["files"][meta.get("serving_file", "tflite_fp16")]
            classes = tuple(str(c) for c in meta["classes"])
            spec = cls(
                name=str(meta.get("name", "model")),
                version=str(meta.get("version", "0")),
                classes=classes,
                input_height=int(meta["input"]["height"]),
                input_width=int(meta["input"]["width"]),
                path=model_dir / entry["path"],
                sha256=str(entry["sha256"]).lower(),
                refine=_refine_settings(meta.get("refine"), meta_path),
                decision=Decision.from_dict(meta.get("decision")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{meta_path}: missing or bad field ({exc!r})") from exc
        if len(classes) < 2:
            raise ModelError(f"{meta_path}: needs background plus at least one class, got {classes}")
        try:
            content = spec.path.read_bytes()
        except OSError as exc:
            raise ModelError(f"model file unreadable: {exc}") from exc
        actual = hashlib.sha256(content).hexdigest()
        if actual != spec.sha256:
            raise ModelError(f"{spec.path}: sha256 {actual[:12]}… does not match model.json ({spec.sha256[:12]}…)")
        return replace(spec, content=content)


def _refine_settings(entry: Any, meta_path: Path) -> GuidedFilter | None:
    """model.json's optional `refine` entry as settings, or ModelError when it is malformed."""
    if entry is not None and not isinstance(entry, dict):
        raise ModelError(f"{meta_path}: refine must be an object, got {entry!r}")
    try:
        return GuidedFilter.from_dict(entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: bad refine entry {entry!r} ({exc!r})") from exc


@dataclass
class Detection:
    """The product found in an image."""

    label: str
    score: float
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), full-resolution pixels
    area: float  # fraction of the image covered by the product
    # Set only by models with a `decision` entry (absent from the JSON otherwise, as in 1.x):
    uncertain: bool | None = None  # True: the class score is under the threshold; label is "unknown"
    guess: str | None = None  # the dominant class, also when uncertain
    product_score: float | None = None  # mean foreground probability over the product's pixels

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {"label": self.label, "score": round(self.score, 4), "bbox": list(self.bbox),
               "area": round(self.area, 5)}
        if self.uncertain is not None:
            out.update(uncertain=self.uncertain, guess=self.guess, product_score=round(self.product_score or 0.0, 4))
        return out


@dataclass
class Prediction:
    """Result of one predict(): a full-resolution 8-bit alpha mask and the detections (empty: no product)."""

    mask: Image.Image  # mode "L", size of the input image
    detections: list[Detection]
    timing_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class _Runner:
    """One TFLite interpreter with its input and output tensor indices."""

    interpreter: Any
    input_index: int
    output_index: int


class Segmenter:
    """A model session: predict(image, size, guide) -> Prediction. Safe to share between threads."""

    def __init__(self, spec: ModelSpec, *, num_threads: int = 1, pool_size: int = 2, threshold: float = 0.5,
                 min_area: float = 0.005, refine_max_side: int = 0) -> None:
        if refine_max_side < 0:
            raise ValueError(f"REFINE_MAX_SIDE must be >= 0 (0 turns refinement off), got {refine_max_side}")
        self.spec = spec
        self.num_threads = num_threads
        self.threshold = threshold
        self.min_area = min_area
        # An interpreter is not thread-safe: each invoke borrows one from a small pool. The pool bounds memory
        # (each interpreter holds its own unpacked weights) while letting threads overlap decode/encode with inference.
        self.pool_size = max(1, pool_size)
        self._pool: queue.LifoQueue[_Runner] = queue.LifoQueue()
        self._pool_lock = threading.Lock()
        self._created = 0
        self._lut = _alpha_lut(threshold)
        self._generic = spec.classes.index(GENERIC_CLASS) if GENERIC_CLASS in spec.classes else -1
        # The refinement works on the photo capped to the model's max_side (what evaluation scored); REFINE_MAX_SIDE
        # can only lower that (cheaper, coarser edges) or turn it off.
        self.guide_side = min(refine_max_side, spec.refine.max_side) if spec.refine is not None else 0
        # Same weights, other masks: cut-outs cached with other refinement settings, or made before the input resize
        # matched training (PREPROCESSING), must not be reused.
        refined = [spec.refine.as_dict(), self.guide_side] if self.guide_side else None
        # The decision empties or relabels masks: part of the key when present (keys of 1.x models stay as they were).
        decided = [spec.decision.as_dict()] if spec.decision is not None else []
        served = json.dumps([spec.sha256, PREPROCESSING, refined, *decided])
        self._served_hash = hashlib.sha256(served.encode()).hexdigest()[:16]

    @property
    def model_hash(self) -> str:
        """Short hash identifying what the model serves: its file, plus the refinement when on (for cache keys)."""
        return self._served_hash

    def _build(self) -> _Runner:
        """Build one interpreter and check it against model.json."""
        # Imported here so that importing core (the web app's CLI commands, training) does not load the runtime.
        from ai_edge_litert.interpreter import Interpreter

        if not self.spec.content:
            raise ModelError(f"{self.spec.path}: no verified model bytes (load the spec with ModelSpec.load)")
        interp = Interpreter(model_content=self.spec.content, num_threads=self.num_threads)
        interp.allocate_tensors()
        inp = interp.get_input_details()[0]
        out = interp.get_output_details()[0]
        expected = (1, self.spec.input_height, self.spec.input_width, 3)
        if tuple(inp["shape"]) != expected:
            raise ModelError(f"model input shape {tuple(inp['shape'])} != model.json {expected}")
        if int(out["shape"][-1]) != len(self.spec.classes):
            raise ModelError(f"model has {out['shape'][-1]} output channels for {len(self.spec.classes)} classes")
        log.info("built TFLite interpreter %d/%d for %s %s", self._created, self.pool_size, self.spec.name,
                 self.spec.version)
        return _Runner(interp, inp["index"], out["index"])

    def _acquire(self) -> _Runner:
        """A free interpreter: an idle one, a new one while under the pool size, else wait for one."""
        while True:
            try:
                return self._pool.get_nowait()
            except queue.Empty:
                pass
            with self._pool_lock:
                create = self._created < self.pool_size
                if create:
                    self._created += 1
            if create:
                try:
                    return self._build()
                except BaseException:
                    with self._pool_lock:
                        self._created -= 1
                    raise
            try:
                # Bounded wait, then look again: a failed build elsewhere frees a slot instead of a runner.
                return self._pool.get(timeout=1.0)
            except queue.Empty:
                continue

    def warm_up(self) -> None:
        """Build an interpreter and run it once so the first request is not slow (and a bad model shows now)."""
        self._run(np.full((1, self.spec.input_height, self.spec.input_width, 3), 255.0, np.float32))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """One interpreter invoke; returns logits (h, w, classes)."""
        runner = self._acquire()
        try:
            runner.interpreter.set_tensor(runner.input_index, batch)
            runner.interpreter.invoke()
            return runner.interpreter.get_tensor(runner.output_index)[0]
        finally:
            self._pool.put(runner)

    def predict(self, model_input: Image.Image, size: tuple[int, int],
                guide: Image.Image | None = None) -> Prediction:
        """Segment an RGB image already resized to the model input; the mask is returned at `size` (w, h).

        `guide` is the photo with a long side of at most `guide_side`: when refinement is on, the foreground's edges
        follow its colour edges; without it (or with refinement off) the foreground is upsampled bilinearly."""
        t0 = time.perf_counter()
        batch = np.asarray(model_input, dtype=np.float32)[None]
        logits = self._run(batch).astype(np.float32, copy=False)
        t1 = time.perf_counter()
        # Class planes first: numpy reduces across contiguous (h, w) planes many times faster than along a short
        # last axis, and this runs on every request.
        planes = np.ascontiguousarray(np.moveaxis(logits, -1, 0))
        top = planes.max(axis=0)
        exp = np.exp(planes - top)
        total = exp.sum(axis=0)
        fg = 1.0 - exp[0] / total  # foreground probability: 1 - softmax(background)
        label, score = self._label(planes, top, exp, total)
        decided = self._decide(fg, label, score)
        if decided is None:
            label = None
        timing = {"inference": (t1 - t0) * 1000}
        if self.guide_side and guide is not None:
            t_refine = time.perf_counter()
            fg = refine(fg, guide, self.spec.refine)  # now at the guide's resolution
            timing["refine"] = (time.perf_counter() - t_refine) * 1000
        # Bring the single foreground channel to full size (bilinear, unless the refinement already did), then decide
        # (threshold with a soft ramp).
        fg8 = Image.fromarray(np.clip(fg * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
        if fg8.size != size:
            fg8 = fg8.resize(size, Image.BILINEAR)
        mask = fg8.point(self._lut)
        detections = []
        if label is not None:
            detection = self._detect(mask, label, score)
            if detection is not None:
                if decided is not None and self.spec.decision is not None:
                    certain, product_score = decided
                    detection = replace(detection, label=label if certain else UNKNOWN, uncertain=not certain,
                                        guess=label, product_score=product_score)
                detections.append(detection)
        if not detections:
            mask = Image.new("L", size, 0)
        timing["postprocess"] = (time.perf_counter() - t1) * 1000 - timing.get("refine", 0.0)
        return Prediction(mask, detections, timing)

    def _label(self, planes: np.ndarray, top: np.ndarray, exp: np.ndarray,
               total: np.ndarray) -> tuple[str | None, float]:
        """Dominant foreground class and its mean probability over its pixels ("other" only when alone)."""
        # A pixel belongs to class k when its logit is the maximum (argmax by comparison, one plane at a time).
        foreground = planes[0] < top  # ties with background count as background, like argmax
        winners = [(planes[k] == top) & foreground for k in range(planes.shape[0])]
        counts = np.array([0] + [int(np.count_nonzero(w)) for w in winners[1:]])
        if self._generic > 0 and counts.sum() > counts[self._generic]:
            counts[self._generic] = 0
        if counts.sum() == 0:
            return None, 0.0
        k = int(counts.argmax())
        return self.spec.classes[k], float((exp[k][winners[k]] / total[winners[k]]).mean())

    def _decide(self, fg: np.ndarray, label: str | None, score: float) -> tuple[bool, float] | None:
        """model.json's `decision` on the model-resolution foreground: None when there is no product, else (class
        certain?, product score). Without a decision entry every labelled image is a certain product (1.x)."""
        if label is None:
            return None
        if self.spec.decision is None:
            return True, 0.0
        area, product_score = product_evidence(fg)
        if not self.spec.decision.has_product(area, product_score):
            return None
        return self.spec.decision.certain(score), product_score

    def _detect(self, mask: Image.Image, label: str, score: float) -> Detection | None:
        """Bounding box and area of the decided foreground, or None when it is too small to be a product."""
        solid = np.asarray(mask) >= 128
        w, h = mask.size
        area = float(solid.sum()) / float(w * h)
        if area < self.min_area:
            return None
        rows = np.flatnonzero(solid.any(axis=1))
        cols = np.flatnonzero(solid.any(axis=0))
        bbox = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        return Detection(label, score, bbox, area)


def _alpha_lut(threshold: float) -> list[int]:
    """8-bit lookup table mapping foreground probability to alpha: a steep ramp centred on the threshold."""
    lo, hi = threshold - FEATHER, threshold + FEATHER
    return [int(round(255 * min(1.0, max(0.0, (v / 255.0 - lo) / (hi - lo))))) for v in range(256)]
