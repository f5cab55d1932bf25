"""Export a trained run: .keras, .h5 (no optimiser), SavedModel, TFLite fp32 and fp16; check TFLite ≈ Keras; write
models/model.json (the web app's contract, see DEVELOPERS.md) atomically with the sha256 of each shipped file."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.refine import GuidedFilter

from .io import atomic_write_bytes, atomic_write_json, model_input, open_upright

log = logging.getLogger(__name__)

MODEL_NAME = "roomfit-seg"
FP16_FILE = "roomfit_seg_fp16.tflite"
H5_FILE = "roomfit_seg.h5"


@dataclass
class ExportConfig:
    """Where the trained run is and where the files go."""

    run_dir: Path
    work_dir: Path  # every format (big ones stay here: models/_work is gitignored)
    ship_dir: Path | None = Path("models")  # None: do not ship (e.g. the pix2pix baseline)
    version: str = "1.0.0"
    check_images: int = 8
    tolerance: float = 0.05  # max |logit difference| allowed between fp32 TFLite and Keras
    check_photos: list[str] = field(default_factory=list)  # real photos for the TFLite ≈ Keras check
    refine: GuidedFilter | None = None  # the served mask refinement, written into model.json


def load_resized(path: str | Path, size: int) -> np.ndarray:
    """A photo as float32 RGB 0..255, resized bilinear to size×size (what serving feeds the model)."""
    return model_input(open_upright(path), size)


def load_run_model(run_dir: Path):
    """Rebuild a run's model from its config.json and load its best weights (no optimiser)."""
    from .model import build_model

    cfg_path = Path(run_dir) / "config.json"
    weights = Path(run_dir) / "best.weights.h5"
    if not cfg_path.is_file() or not weights.is_file():
        raise FileNotFoundError(f"{run_dir}: no trained run here (need config.json and best.weights.h5)")
    cfg = json.loads(cfg_path.read_text())
    model = build_model(cfg["input_size"], len(cfg["classes"]), cfg["alpha"], cfg["decoder"], None,
                        cfg.get("width", 96), cfg.get("class_pool", "global"))
    model.load_weights(weights)
    return model, cfg


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_tflite(model, saved_model_dir: Path, fp16: bool) -> bytes:
    """Convert with TFLiteConverter.from_keras_model, falling back to the SavedModel if that fails."""
    import tensorflow as tf

    def configure(conv):
        if fp16:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        return conv

    try:
        return configure(tf.lite.TFLiteConverter.from_keras_model(model)).convert()
    except (ValueError, RuntimeError, TypeError, AttributeError) as exc:
        log.warning("from_keras_model failed (%s); converting the SavedModel instead", exc)
        return configure(tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))).convert()


def run_tflite(model_path: Path, images: np.ndarray, threads: int = 1) -> np.ndarray:
    """Logits of a TFLite model for a batch of images (one invoke per image) with ai-edge-litert."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_path), num_threads=threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    results = []
    for image in images:
        interp.set_tensor(inp["index"], image[None].astype(np.float32))
        interp.invoke()
        results.append(interp.get_tensor(out["index"])[0].copy())
    return np.stack(results)


def check_agreement(model, tflite_path: Path, images: np.ndarray) -> dict:
    """Compare TFLite and Keras logits: max abs difference and argmax agreement."""
    ref = model(images, training=False).numpy()
    got = run_tflite(tflite_path, images)
    return {"max_abs_diff": float(np.abs(ref - got).max()),
            "argmax_agreement": float((ref.argmax(-1) == got.argmax(-1)).mean())}


def export_run(cfg: ExportConfig, images: np.ndarray | None = None, metrics: dict | None = None) -> dict:
    """Write every format, check them, ship the fp16 TFLite + .h5 and model.json; returns the file table."""
    model, run_cfg = load_run_model(cfg.run_dir)
    size = run_cfg["input_size"]
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    files = {"keras": work / "roomfit_seg.keras", "h5": work / H5_FILE, "saved_model": work / "saved_model",
             "tflite_fp32": work / "roomfit_seg_fp32.tflite", "tflite_fp16": work / FP16_FILE}
    model.save(files["keras"])
    model.save(files["h5"])  # the model is never compiled here, so the file carries no optimiser state
    if files["saved_model"].exists():
        shutil.rmtree(files["saved_model"])
    model.export(str(files["saved_model"]), verbose=False)
    for key, fp16 in (("tflite_fp32", False), ("tflite_fp16", True)):
        atomic_write_bytes(files[key], to_tflite(model, files["saved_model"], fp16))
    if images is None and cfg.check_photos:
        images = np.stack([load_resized(p, size) for p in cfg.check_photos[: cfg.check_images]])
    if images is None:  # no photos given: noise still exercises every op
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 255, size=(cfg.check_images, size, size, 3)).astype(np.float32)
    checks = {k: check_agreement(model, files[k], images) for k in ("tflite_fp32", "tflite_fp16")}
    log.info("TFLite vs Keras: %s", checks)
    if checks["tflite_fp32"]["max_abs_diff"] > cfg.tolerance or checks["tflite_fp16"]["argmax_agreement"] < 0.98:
        raise ValueError(f"TFLite disagrees with Keras: {checks}")
    table = {k: {"path": str(p), "bytes": _size(p)} for k, p in files.items()}
    atomic_write_json(work / "export.json", {"files": table, "checks": checks, "run_dir": str(cfg.run_dir)})
    if cfg.ship_dir is not None:
        ship(cfg, run_cfg, files, metrics)
    return {"files": table, "checks": checks}


def _size(path: Path) -> int:
    """Bytes of a file, or of everything under a folder."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def ship(cfg: ExportConfig, run_cfg: dict, files: dict[str, Path], metrics: dict | None) -> Path:
    """Copy the fp16 TFLite and .h5 into ship_dir and write model.json there (atomically, last)."""
    ship_dir = Path(cfg.ship_dir)
    shipped = {}
    for key, name in (("tflite_fp16", FP16_FILE), ("h5", H5_FILE)):
        atomic_write_bytes(ship_dir / name, files[key].read_bytes())
        shipped[key] = {"path": name, "sha256": sha256_of(ship_dir / name), "bytes": (ship_dir / name).stat().st_size}
    size, classes = run_cfg["input_size"], list(run_cfg["classes"])
    doc = {
        "name": MODEL_NAME, "version": cfg.version, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "classes": classes,
        "input": {"height": size, "width": size, "channels": 3, "dtype": "float32", "range": [0, 255],
                  # Bilinear sampled at pixel centres, no antialiasing (tf.image.resize; core.images.model_resize).
                  "color": "RGB", "resize": "bilinear", "antialias": False},
        "output": {"kind": "logits", "layout": "NHWC", "height": size, "width": size, "channels": len(classes)},
        "serving_file": "tflite_fp16",
        "files": shipped,
        "metrics": metrics or {},
    }  # exactly the DEVELOPERS.md contract; the TFLite checks are in the work dir's export.json
    if cfg.refine is not None:  # how serving upsamples the foreground (webapp.refine); absent: plain bilinear
        doc["refine"] = cfg.refine.as_dict()
    from .calibrate import read_decision

    decision = read_decision(cfg.run_dir)
    if decision is not None:  # chosen on validation by `calibrate`; absent: 1.x behaviour (core.decision)
        doc["decision"] = decision.as_dict()
    path = ship_dir / "model.json"
    atomic_write_json(path, doc)
    log.info("shipped %s", path)
    return path


def update_model_json_metrics(model_json: Path, metrics: dict) -> None:
    """Replace the metrics of an existing model.json (atomically), leaving the rest of the contract untouched."""
    doc = json.loads(Path(model_json).read_text(encoding="utf-8"))
    doc["metrics"] = metrics
    atomic_write_json(model_json, doc)
