"""Teachers produce a soft foreground mask for a product photo: `mask(image) -> alpha` (float32 0..1, image size)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)


class Teacher(Protocol):
    """Anything that returns a soft foreground mask the size of the image."""

    name: str

    def mask(self, image: Image.Image, klass: str | None = None) -> np.ndarray:
        """Return alpha as float32 in [0, 1] with shape (image.height, image.width); `klass` is the product's class
        from the shop's metadata, for teachers that detect by class (None: any)."""
        ...


@dataclass
class ISNetConfig:
    """Where the ISNet ONNX file is and how to run it."""

    model_path: Path
    size: int = 1024
    threads: int = 0  # 0 lets onnxruntime pick (all cores)
    # onnxruntime execution providers in order of preference; GPU teacher actors (docs/batch.md) put
    # "CUDAExecutionProvider" first (needs onnxruntime-gpu on those nodes).
    providers: tuple[str, ...] = ("CPUExecutionProvider",)


class ISNetTeacher:
    """ISNet (DIS) background removal through onnxruntime; the session is built once and reused."""

    name = "isnet"

    def __init__(self, cfg: ISNetConfig):
        import onnxruntime as ort  # training-only dependency, imported where used

        if not Path(cfg.model_path).is_file():
            raise FileNotFoundError(f"ISNet model not found: {cfg.model_path}")
        opts = ort.SessionOptions()
        if cfg.threads:
            opts.intra_op_num_threads = cfg.threads
        self.cfg = cfg
        self.session = ort.InferenceSession(str(cfg.model_path), opts, providers=list(cfg.providers))
        self.input_name = self.session.get_inputs()[0].name

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """RGB, resized to size×size, (x − 128) / 256, NCHW float32."""
        rgb = image.convert("RGB").resize((self.cfg.size, self.cfg.size), Image.BILINEAR)
        x = (np.asarray(rgb, dtype=np.float32) - 128.0) / 256.0
        return x.transpose(2, 0, 1)[None]

    def mask(self, image: Image.Image, klass: str | None = None) -> np.ndarray:
        """Soft foreground probability resized back to the image size (class-agnostic: `klass` is unused)."""
        out = self.session.run(["output"], {self.input_name: self.preprocess(image)})[0][0, 0]
        alpha = Image.fromarray(np.clip(out, 0.0, 1.0).astype(np.float32), mode="F")
        return np.asarray(alpha.resize(image.size, Image.BILINEAR), dtype=np.float32).clip(0.0, 1.0)
