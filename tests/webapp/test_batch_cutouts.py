"""Cut-outs made ahead by the batch job (`python -m training cutouts`) are the web app's own, served with no model."""
from __future__ import annotations

from pathlib import Path

from core.segment import Segmenter
from training.batch import EngineConfig
from training.batch_jobs import make_cutouts
from webapp.catalogue import list_products
from webapp.db import get_db


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()
            and not p.name.startswith(".")}


def _product_ids(app) -> list[int]:
    with app.app_context():
        rows, _ = list_products(get_db(), klass=None, query=None, page=1, per_page=100)
        return [r["id"] for r in rows]


def test_batch_cutouts_are_byte_identical_to_the_web_apps(make_app, model_dir, catalogue_manifest, tmp_path):
    batch = make_cutouts(str(catalogue_manifest), str(tmp_path / "batch"), str(model_dir), EngineConfig("local"))
    assert batch.ok == 5 and batch.failed == 0
    app = make_app(CACHE_DIR=str(tmp_path / "served"))
    client = app.test_client()
    ids = _product_ids(app)
    assert len(ids) == 4
    for pid in ids:
        assert client.get(f"/api/products/{pid}/cutout.png").status_code == 200
    served, made = _files(tmp_path / "served"), _files(tmp_path / "batch")
    assert len(served) == 8 and all(made[name] == data for name, data in served.items())


def test_precomputed_cutouts_are_served_without_a_model_call(make_app, model_dir, catalogue_manifest, tmp_path,
                                                             monkeypatch):
    make_cutouts(str(catalogue_manifest), str(tmp_path / "batch"), str(model_dir), EngineConfig("local"))
    app = make_app(CACHE_DIR=str(tmp_path / "batch"))
    calls = []
    monkeypatch.setattr(Segmenter, "predict", lambda self, *a, **k: calls.append(a) or 1 / 0)
    client = app.test_client()
    for pid in _product_ids(app):
        resp = client.get(f"/api/products/{pid}/cutout.png")
        assert resp.status_code == 200 and resp.data.startswith(b"\x89PNG")
        assert client.get(f"/api/products/{pid}").get_json()["cutout"]["width"] > 0
    assert calls == []
