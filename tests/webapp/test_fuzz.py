"""Hostile uploads (benchmarks/hostile.py: broken EXIF, corrupt PNG data, truncation, bit flips, huge headers, ...)
never get a 5xx, and every refusal is the API's JSON error shape."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import hostile  # noqa: E402

ERROR_CODES = {"missing_field", "empty_file", "invalid_image", "unsupported_media_type", "too_many_pixels"}


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory, model_dir):
    from webapp import create_app

    tmp = tmp_path_factory.mktemp("fuzz")
    app = create_app({"TESTING": True, "DATABASE": str(tmp / "db.sqlite"), "MODEL_DIR": str(model_dir),
                      "CACHE_DIR": str(tmp / "cache")})
    return app.test_client()


def test_hostile_uploads_never_get_a_5xx(fuzz_client):
    files = hostile.hostile_files(seed=16, count=400)
    assert len(files) >= 400
    statuses: dict[int, int] = {}
    for i, (name, data) in enumerate(files):
        fmt = ("json", "png", "mask")[i % 3]
        resp = fuzz_client.post(f"/predict?format={fmt}", data={"image": (io.BytesIO(data), "upload.bin")},
                                content_type="multipart/form-data")
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        assert resp.status_code < 500, (name, resp.status_code, resp.get_data()[:200])
        if resp.status_code != 200:
            body = resp.get_json()
            assert body["success"] is False and set(body["error"]) == {"code", "message"}, name
            assert body["error"]["code"] in ERROR_CODES, (name, body)
    # The generator must really exercise both sides: files that decode and files that are refused.
    assert statuses.get(200, 0) > 20 and statuses.get(400, 0) > 100, statuses


@pytest.mark.parametrize("name", [n for n, _ in hostile.structured_files()
                                  if n.startswith(("jpeg-exif-", "png-exif-", "webp-exif-"))][:200:7])
def test_broken_exif_costs_the_orientation_not_the_photo(fuzz_client, name):
    data = dict(hostile.structured_files())[name]
    resp = fuzz_client.post("/predict", data={"image": (io.BytesIO(data), "a")}, content_type="multipart/form-data")
    assert resp.status_code == 200, resp.get_json()


def test_corrupt_png_pixels_are_invalid_image_not_an_empty_mask(fuzz_client):
    data = dict(hostile.structured_files())["png-idat-not-zlib"]
    resp = fuzz_client.post("/predict", data={"image": (io.BytesIO(data), "a.png")},
                            content_type="multipart/form-data")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_image"


def test_a_two_frame_mpo_is_served_as_its_first_frame(fuzz_client):
    data = dict(hostile.structured_files())["mpo-two-frames"]
    resp = fuzz_client.post("/predict", data={"image": (io.BytesIO(data), "a.jpg")},
                            content_type="multipart/form-data")
    assert resp.status_code == 200
    assert (resp.get_json()["width"], resp.get_json()["height"]) == (64, 48)
