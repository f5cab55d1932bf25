"""POST /predict: real segmentation with the tiny model, every error code and odd images."""
from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

BOX = (50, 40, 130, 120)  # the dark square of square_photo(), in a 200x160 photo


@pytest.fixture(params=["plain", "refined"])
def any_client(request, make_app, refine_model_dir):
    """A client of the tiny model as it is, and with refinement guided by a photo smaller than the test photos."""
    if request.param == "plain":
        return make_app().test_client()
    return make_app(MODEL_DIR=str(refine_model_dir), REFINE_MAX_SIDE=120).test_client()


def post(client, data: bytes, filename="photo.jpg", **params):
    """POST bytes as the image field."""
    return client.post("/predict", data={"image": (io.BytesIO(data), filename), **params},
                       content_type="multipart/form-data")


def decode_mask(body: dict) -> np.ndarray:
    """The base64 PNG mask of a JSON prediction as an array."""
    mask = Image.open(io.BytesIO(base64.b64decode(body["mask"])))
    assert mask.mode == "L"
    return np.asarray(mask)


def assert_error(resp, status: int, code: str) -> dict:
    """The one JSON error shape, with no traceback."""
    assert resp.status_code == status, resp.data[:300]
    body = resp.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in resp.get_data(as_text=True)
    return body


def test_predict_json_finds_the_dark_square(client, square_photo):
    resp = post(client, square_photo())
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["success"] is True
    assert (body["width"], body["height"]) == (200, 160)
    assert body["model"] == {"name": "tiny-test", "version": "0.0.1"}
    assert set(body["timing_ms"]) >= {"decode", "inference", "postprocess", "encode", "total"}
    [pred] = body["predictions"]
    assert pred["label"] == "chair"
    assert 0.5 < pred["score"] <= 1.0
    x0, y0, x1, y1 = pred["bbox"]
    assert abs(x0 - BOX[0]) <= 3 and abs(y0 - BOX[1]) <= 3 and abs(x1 - BOX[2]) <= 3 and abs(y1 - BOX[3]) <= 3
    assert pred["area"] == pytest.approx(80 * 80 / (200 * 160), rel=0.1)
    mask = decode_mask(body)
    assert mask.shape == (160, 200)  # full resolution, not the model's 56x40
    assert mask[80, 90] == 255 and mask[5, 5] == 0 and mask[150, 190] == 0
    # A soft feathered edge: some pixels between 0 and 255 along the border, not a hard step.
    assert ((mask > 0) & (mask < 255)).sum() > 0


def test_predict_json_with_refinement(make_app, refine_model_dir, square_photo):
    client = make_app(MODEL_DIR=str(refine_model_dir)).test_client()
    body = post(client, square_photo()).get_json()
    assert set(body["timing_ms"]) >= {"decode", "inference", "refine", "postprocess", "encode", "total"}
    [pred] = body["predictions"]
    assert pred["label"] == "chair" and decode_mask(body).shape == (160, 200)
    assert all(abs(got - want) <= 2 for got, want in zip(pred["bbox"], BOX))
    cut = Image.open(io.BytesIO(post(client, square_photo(), format="png").data))
    assert cut.mode == "RGBA" and 80 <= cut.width <= 92 and 80 <= cut.height <= 92


def test_refine_max_side_zero_turns_refinement_off(make_app, refine_model_dir, square_photo):
    plain = post(make_app().test_client(), square_photo()).get_json()
    off = post(make_app(MODEL_DIR=str(refine_model_dir), REFINE_MAX_SIDE=0).test_client(), square_photo()).get_json()
    on = post(make_app(MODEL_DIR=str(refine_model_dir)).test_client(), square_photo()).get_json()
    assert "refine" not in off["timing_ms"] and "refine" in on["timing_ms"]
    assert np.array_equal(decode_mask(off), decode_mask(plain))
    assert not np.array_equal(decode_mask(on), decode_mask(plain))


def test_blank_white_image_has_no_product(client, square_photo):
    body = post(client, square_photo(box=(0, 0, 0, 0))).get_json()
    assert body["success"] is True
    assert body["predictions"] == []
    assert decode_mask(body).max() == 0


def test_tiny_speck_is_not_a_product(client, square_photo):
    body = post(client, square_photo(size=(400, 400), box=(200, 200, 204, 204), fmt="PNG"), "speck.png").get_json()
    assert body["predictions"] == []


def test_generic_other_class_is_a_label_only_when_alone(client, square_photo):
    blue = post(client, square_photo(color=(20, 20, 140), fmt="PNG"), "blue.png").get_json()
    assert [p["label"] for p in blue["predictions"]] == ["other"]
    img = Image.new("RGB", (200, 160), "white")
    img.paste((20, 20, 140), (10, 10, 150, 150))  # a big generic blob...
    img.paste((20, 20, 20), (160, 60, 190, 100))  # ...and a small chair: the named class wins
    buf = io.BytesIO()
    img.save(buf, "PNG")
    both = post(client, buf.getvalue(), "both.png").get_json()
    assert [p["label"] for p in both["predictions"]] == ["chair"]


def test_format_png_is_a_cropped_rgba_cutout(client, square_photo):
    resp = post(client, square_photo(), format="png")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert resp.headers["X-Detected-Class"] == "chair"
    cut = Image.open(io.BytesIO(resp.data))
    assert cut.mode == "RGBA"
    assert 80 <= cut.width <= 92 and 80 <= cut.height <= 92  # 80x80 product plus a small margin
    alpha = np.asarray(cut)[..., 3]
    assert alpha[cut.height // 2, cut.width // 2] == 255 and alpha[0, 0] == 0


def test_format_png_uncropped_and_mask(client, square_photo):
    full = Image.open(io.BytesIO(post(client, square_photo(), format="png", crop="false").data))
    assert full.size == (200, 160) and full.mode == "RGBA"
    resp = client.post("/predict?format=mask", data={"image": (io.BytesIO(square_photo()), "a.jpg")})
    mask = Image.open(io.BytesIO(resp.data))
    assert resp.status_code == 200 and mask.mode == "L" and mask.size == (200, 160)


@pytest.mark.parametrize("fmt, mode", [
    ("PNG", "RGBA"), ("PNG", "LA"), ("PNG", "L"), ("PNG", "P"), ("PNG", "1"), ("JPEG", "CMYK"), ("JPEG", "L"),
    ("WEBP", "RGB"), ("WEBP", "RGBA"),
])
def test_odd_modes_are_converted(client, fmt, mode, square_photo):
    body = post(client, square_photo(fmt=fmt, mode=mode), f"odd.{fmt.lower()}").get_json()
    assert body["success"] is True, body
    assert [p["label"] for p in body["predictions"]] == ["chair"]
    assert (body["width"], body["height"]) == (200, 160)


def test_transparent_png_background_counts_as_white(client):
    img = Image.new("RGBA", (200, 160), (0, 0, 0, 0))  # transparent *black*: must not become a black photo
    img.paste((20, 20, 20, 255), BOX)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    [pred] = post(client, buf.getvalue(), "t.png").get_json()["predictions"]
    assert pred["area"] == pytest.approx(0.2, rel=0.15)


def test_16_bit_png_is_scaled_not_clipped(client):
    arr = np.full((160, 200), 65535, np.uint16)
    arr[40:120, 50:130] = 5000  # dark in 16-bit terms (would be clipped to white if read as 0..255)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I")
    [pred] = post(client, buf.getvalue(), "deep.png").get_json()["predictions"]
    assert pred["label"] == "chair"


def test_exif_rotation_is_honoured(any_client):
    # Stored 200x160 with the square near the left edge; orientation 6 means "rotate 90° clockwise to view".
    img = Image.new("RGB", (200, 160), "white")
    img.paste((20, 20, 20), (10, 40, 60, 120))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif)
    for fmt in ("json", "png"):
        resp = post(any_client, buf.getvalue(), format=fmt, crop="false")
        if fmt == "json":
            body = resp.get_json()
            assert (body["width"], body["height"]) == (160, 200)
            x0, y0, x1, y1 = body["predictions"][0]["bbox"]
            # After rotating clockwise the left strip is at the top: y in 10..60, x in 40..120.
            assert abs(y0 - 10) <= 3 and abs(y1 - 60) <= 3 and abs(x0 - 40) <= 3 and abs(x1 - 120) <= 3
        else:
            assert Image.open(io.BytesIO(resp.data)).size == (160, 200)


def test_malformed_exif_still_turns_the_photo_upright(any_client, malformed_exif_jpeg):
    # Pillow's exif_transpose raises struct.error re-encoding this EXIF block: it used to be a 500.
    img = Image.new("RGB", (200, 160), "white")
    img.paste((20, 20, 20), (10, 40, 60, 120))
    data = malformed_exif_jpeg(img)
    body = post(any_client, data, crop="false").get_json()
    assert body["success"] and (body["width"], body["height"]) == (160, 200)
    resp = post(any_client, data, format="png", crop="false")
    assert resp.status_code == 200 and Image.open(io.BytesIO(resp.data)).size == (160, 200)


def test_big_jpeg_full_resolution_mask(client, square_photo):
    body = post(client, square_photo(size=(1200, 900), box=(300, 200, 900, 700))).get_json()
    assert decode_mask(body).shape == (900, 1200)
    x0, y0, x1, y1 = body["predictions"][0]["bbox"]
    assert abs(x0 - 300) <= 12 and abs(x1 - 900) <= 12


# ---- errors -------------------------------------------------------------------------------------------------------

def test_missing_field(client):
    assert_error(client.post("/predict", data={"other": "x"}, content_type="multipart/form-data"), 400,
                 "missing_field")


def test_zero_bytes(client):
    assert_error(post(client, b""), 400, "empty_file")


def test_not_an_image(client):
    assert_error(post(client, b"hello, this is text\n" * 20, "notes.txt"), 400, "invalid_image")


def test_truncated_jpeg(client, square_photo):
    data = square_photo(size=(400, 300))
    assert_error(post(client, data[: len(data) // 2]), 400, "invalid_image")


def test_truncated_png(client, square_photo):
    data = square_photo(fmt="PNG")
    assert_error(post(client, data[: len(data) - 40], "t.png"), 400, "invalid_image")


def test_bad_format_parameter(client, square_photo):
    assert_error(post(client, square_photo(), format="gif"), 400, "invalid_parameter")
    assert_error(post(client, square_photo(), format="png", crop="maybe"), 400, "invalid_parameter")


def test_unsupported_image_type(client):
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), "white").save(buf, "GIF")
    assert_error(post(client, buf.getvalue(), "a.gif"), 415, "unsupported_media_type")


def test_not_multipart(client, square_photo):
    resp = client.post("/predict", data=square_photo(), content_type="image/jpeg")
    assert_error(resp, 415, "unsupported_media_type")


def test_too_large_upload(make_app):
    client = make_app(MAX_CONTENT_LENGTH=50_000).test_client()
    body = assert_error(post(client, b"\xff" * 60_000), 413, "payload_too_large")
    assert "limit" in body["error"]["message"]


def test_too_many_pixels(make_app, square_photo):
    client = make_app(MAX_IMAGE_PIXELS=100 * 100).test_client()
    assert_error(post(client, square_photo(size=(200, 160))), 422, "too_many_pixels")


def _png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height zeros: a few kB on the wire, hundreds of MB once decoded."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [7000, 20000])  # over our 40 MP limit; over Pillow's own bomb limit
def test_png_bomb_is_refused(client, side):
    data = _png_bomb(side, side)
    assert len(data) < 2_000_000
    assert_error(post(client, data, "bomb.png"), 422, "too_many_pixels")


def test_model_not_ready(make_app, tmp_path, square_photo):
    client = make_app(MODEL_DIR=str(tmp_path / "nowhere")).test_client()
    resp = post(client, square_photo())
    assert_error(resp, 503, "model_not_ready")
    assert resp.headers["Retry-After"]


def test_model_with_wrong_checksum_is_not_ready(make_app, model_dir, tmp_path):
    import json
    import shutil

    bad = tmp_path / "bad_model"
    shutil.copytree(model_dir, bad)
    meta = json.loads((bad / "model.json").read_text())
    meta["files"]["tflite_fp16"]["sha256"] = "0" * 64
    (bad / "model.json").write_text(json.dumps(meta))
    client = make_app(MODEL_DIR=str(bad)).test_client()
    body = assert_error(client.get("/readyz"), 503, "model_not_ready")
    assert "sha256" in body["error"]["message"]


def test_rate_limit_answers_429_with_retry_after(make_app, square_photo):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_PER_SECOND=0.01, RATELIMIT_BURST=2).test_client()
    assert post(client, square_photo()).status_code == 200
    assert post(client, square_photo()).status_code == 200
    resp = post(client, square_photo())
    assert_error(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) >= 1


def test_get_predict_is_405_json(client):
    resp = client.get("/predict")
    assert_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]


@pytest.mark.parametrize("size", [(1, 1), (1, 3000), (3000, 2)])
def test_degenerate_sizes(any_client, size):
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 10, 10)).save(buf, "PNG")
    body = post(any_client, buf.getvalue(), "thin.png").get_json()
    assert body["success"] is True and (body["width"], body["height"]) == size
    assert decode_mask(body).shape == (size[1], size[0])


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (500, 500)])
def test_mask_png_round_trips_exactly(size):
    from core.imaging import mask_png

    arr = np.random.default_rng(0).integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    arr[: size[1] // 2] = 0  # long runs, like a real mask
    decoded = Image.open(io.BytesIO(mask_png(Image.fromarray(arr, "L"))))
    assert decoded.mode == "L" and decoded.size == size
    assert np.array_equal(np.asarray(decoded), arr)
