"""Fixtures shared by the parts' tests."""
import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

# Classes of the tiny model: dark pixels are "chair" (blue-ish dark pixels are "other"), white is background.
TINY_CLASSES = ["background", "chair", "other"]
TINY_H, TINY_W = 40, 56  # deliberately not square, so a swapped height/width shows up in the tests


def build_tiny_model(out_dir: Path) -> Path:
    """Export a fixed-weight 1x1-convolution segmenter to fp16 TFLite plus a model.json (the models/ contract)."""
    import tensorflow as tf  # test-only dependency: the app itself runs the .tflite with ai-edge-litert

    # logits = x @ W + b with x the raw RGB 0..255 pixel: background rises with brightness, chair and other
    # with darkness; the red-minus-blue term decides between chair and other.
    k = 20.0 / 765.0
    w = np.array([
        [k, -k + 10 / 255, -k - 10 / 255],    # R
        [k, -k, -k],                          # G
        [k, -k - 10 / 255, -k + 10 / 255],    # B
    ], np.float32).reshape(1, 1, 3, 3)
    b = np.array([-10.0, 10.5, 10.0], np.float32)

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, TINY_H, TINY_W, 3], tf.float32)])
        def __call__(self, x):
            return tf.nn.conv2d(x, tf.constant(w), strides=1, padding="SAME") + tf.constant(b)

    module = Tiny()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    tflite = converter.convert()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tiny_fp16.tflite").write_bytes(tflite)
    meta = {
        "name": "tiny-test", "version": "0.0.1", "created": "2026-01-01T00:00:00Z", "classes": TINY_CLASSES,
        "input": {"height": TINY_H, "width": TINY_W, "channels": 3, "dtype": "float32", "range": [0, 255],
                  "color": "RGB", "resize": "bilinear", "antialias": False},
        "output": {"kind": "logits", "layout": "NHWC", "height": TINY_H, "width": TINY_W,
                   "channels": len(TINY_CLASSES)},
        "serving_file": "tflite_fp16",
        "files": {"tflite_fp16": {"path": "tiny_fp16.tflite", "sha256": hashlib.sha256(tflite).hexdigest(),
                                  "bytes": len(tflite)}},
        "metrics": {},
    }
    (out_dir / "model.json").write_text(json.dumps(meta, indent=2))
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny model (dark pixels are a chair on white), built once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def malformed_exif_jpeg():
    """Factory: JPEG bytes of an image stored sideways (EXIF orientation 6) whose EXIF also holds a malformed tag
    (text in RowsPerStrip, one byte away from a camera's Make tag): ImageOps.exif_transpose raises struct.error on it."""
    def make(img: Image.Image) -> bytes:
        exif = Image.Exif()
        exif[0x0112] = 6
        exif[0x010F] = "cam"  # Make, type 2 (ASCII)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=95, exif=exif.tobytes())
        data = buf.getvalue()
        big_endian = b"MM\x00*" in data[:64]
        make_tag = b"\x01\x0f\x00\x02" if big_endian else b"\x0f\x01\x02\x00"  # tag id, then type
        rows_tag = b"\x01\x16\x00\x02" if big_endian else b"\x16\x01\x02\x00"
        assert data.count(make_tag) == 1
        data = data.replace(make_tag, rows_tag)
        with pytest.raises(struct.error):  # the fixture really is the failure it stands for
            ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        return data

    return make
