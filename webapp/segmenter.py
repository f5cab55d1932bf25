"""The web app's hold on its model session (core.segment): loaded on demand, retried while missing or broken."""
from __future__ import annotations

import logging
import threading
import time

from core.segment import ModelError, ModelSpec, Segmenter

log = logging.getLogger(__name__)


class SegmenterHolder:
    """Owns the app's Segmenter: loads it on demand and retries a missing or broken model now and then."""

    def __init__(self, model_dir: str, *, num_threads: int, pool_size: int, threshold: float, min_area: float,
                 refine_max_side: int, retry_seconds: float) -> None:
        self.model_dir = model_dir
        self._kwargs = {"num_threads": num_threads, "pool_size": pool_size, "threshold": threshold,
                        "min_area": min_area, "refine_max_side": refine_max_side}
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._segmenter: Segmenter | None = None
        self._error: str | None = "model not loaded yet"
        self._next_try = 0.0

    @property
    def error(self) -> str | None:
        """Why the model is not ready (None when it is)."""
        return self._error

    def get(self) -> Segmenter | None:
        """The segmenter, loading it if needed; None while the model is missing or broken."""
        if self._segmenter is not None:
            return self._segmenter
        with self._lock:
            if self._segmenter is None and time.monotonic() >= self._next_try:
                try:
                    seg = Segmenter(ModelSpec.load(self.model_dir), **self._kwargs)
                    seg.warm_up()  # before publishing: get() outside the lock must only ever see a working model
                    self._segmenter, self._error = seg, None
                    log.info("model %s %s ready (%d classes, input %dx%d, refine %s)", seg.spec.name,
                             seg.spec.version, len(seg.spec.classes), seg.spec.input_width, seg.spec.input_height,
                             f"{seg.spec.refine.as_dict()} with guide <= {seg.guide_side} px" if seg.guide_side
                             else "off")
                except (ModelError, ValueError, RuntimeError) as exc:
                    # litert raises ValueError/RuntimeError for a corrupt flatbuffer; keep serving pages meanwhile.
                    self._segmenter = None
                    self._error = str(exc)
                    self._next_try = time.monotonic() + self._retry_seconds
                    log.error("model not ready: %s", exc)
        return self._segmenter
