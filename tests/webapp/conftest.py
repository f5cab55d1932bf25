"""Fixtures for the web app tests: the tiny model (tests/conftest.py), a small catalogue, app/client/runner."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from webapp import create_app
from webapp.db import get_db, init_db

# model.json's mask refinement, as the training export writes it; applied at up to 1024 px so the tiny test photos
# are refined at their own size.
REFINE = {"method": "fast_guided_filter", "radius": 4, "eps": 0.0001, "subsample": 1, "max_side": 1024}


def with_refine(model_dir: Path, out_dir: Path, entry=REFINE) -> Path:
    """A copy of a model folder whose model.json has `refine` set to entry."""
    shutil.copytree(model_dir, out_dir)
    meta = json.loads((out_dir / "model.json").read_text())
    meta["refine"] = entry
    (out_dir / "model.json").write_text(json.dumps(meta))
    return out_dir


def square_photo(size=(200, 160), box=(50, 40, 130, 120), color=(20, 20, 20), fmt="JPEG", mode="RGB") -> bytes:
    """A white photo with one dark rectangle (the 'product'), encoded in fmt."""
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste(color, box)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.fixture(scope="session")
def model_dir(tiny_model_dir) -> Path:
    """The tiny model (tests/conftest.py), built once per test session."""
    return tiny_model_dir


@pytest.fixture(scope="session")
def refine_model_dir(model_dir, tmp_path_factory) -> Path:
    """The tiny model with a refine entry (guided-filter upsampling of its foreground)."""
    return with_refine(model_dir, tmp_path_factory.mktemp("refine_model") / "model")


@pytest.fixture(scope="session")
def catalogue_manifest(tmp_path_factory) -> Path:
    """A small scraper-style manifest.jsonl with generated product photos (paths relative to the manifest)."""
    root = tmp_path_factory.mktemp("catalogue")
    (root / "images").mkdir()
    specs = [
        ("c1", "chair", "BERNHARD Chair", "Chair", (60, 40, 140, 150), None),
        ("c2", "chair", "ADDE Chair", "Chair", (30, 30, 90, 100), None),
        ("s1", "couch", "STOCKSUND Three-seat sofa", "Three-seat sofa", (20, 60, 180, 130),
         {"text": "W 200 x D 90 cm", "width_cm": 200.0, "depth_cm": 90.0}),
        ("b1", "bowl", "RUNDLIG 100% bowl_x", "Serving bowl", (70, 70, 130, 110), {"text": "30 cm", "diameter_cm": 30.0}),
        ("n1", None, "GRUNDTAL shelf", "Wall shelf", (10, 10, 190, 40), None),
    ]
    lines = []
    for sku, klass, title, category, box, dims in specs:
        data = square_photo(box=box)
        (root / "images" / f"{sku}.jpg").write_bytes(data)
        lines.append(json.dumps({
            "id": sku, "path": f"images/{sku}.jpg", "sha256": hashlib.sha256(data).hexdigest(), "width": 200,
            "height": 160, "category": category, "class": klass, "title": title, "sku": sku,
            "dimensions": {"text": None, "width_cm": None, "depth_cm": None, "height_cm": None,
                           "diameter_cm": None, **(dims or {})},
            "image_url": None, "page_url": f"https://example.com/{sku}", "source": "test",
            "fetched_at": "2026-01-01T00:00:00+00:00",
        }))
    lines.insert(2, '{"torn line')
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root / "manifest.jsonl"


@pytest.fixture(scope="session")
def rooms_dir(tmp_path_factory) -> Path:
    """Two sample room photos."""
    root = tmp_path_factory.mktemp("rooms")
    for i, colour in enumerate([(200, 180, 150), (150, 170, 190)]):
        Image.new("RGB", (640, 400), colour).save(root / f"room{i}.jpg", quality=85)
    return root


@pytest.fixture
def make_app(tmp_path, model_dir, catalogue_manifest, rooms_dir):
    """Factory for apps with test settings (overrides on top), the catalogue imported."""
    def _make(**overrides):
        from webapp.catalogue import import_file

        config = {"TESTING": True, "DATABASE": str(tmp_path / "test.sqlite"), "MODEL_DIR": str(model_dir),
                  "CACHE_DIR": str(tmp_path / "cache"), "ROOMS_DIR": str(rooms_dir), "PAGE_SIZE": 2,
                  "MODEL_RETRY_SECONDS": 0.0, "SHOPPER_DATABASE": str(tmp_path / "shopper.sqlite"),
                  "SHOPPER_DIR": str(tmp_path / "shopper"), **overrides}
        app = create_app(config)
        with app.app_context():
            init_db()
            import_file(get_db(), catalogue_manifest)
        return app
    return _make


@pytest.fixture
def app(make_app):
    """The app under test."""
    return make_app()


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner."""
    return app.test_cli_runner()


@pytest.fixture(name="with_refine")
def with_refine_fixture():
    """The with_refine() helper for test modules."""
    return with_refine


@pytest.fixture(name="square_photo")
def square_photo_fixture():
    """The square_photo() helper for test modules (conftest is not importable under --import-mode=importlib)."""
    return square_photo
