"""The batch path (training.batch): both engines give the same files, a killed run resumes, S3 output via moto."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.manifest import ManifestRecord, ManifestWriter
from training.batch import EngineConfig, FsStorage
from training.batch_jobs import Remote, label_with_engine, make_cutouts
from training.label import LabelConfig

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"  # the shipped model: cut-outs exactly as served
CLASSES = ("background", "couch", "chair")


class SquareTeacher:
    """Foreground is a centred square; counts its calls, and raises after `fail_after` of them (a killed run)."""

    name = "fake"

    def __init__(self, fail_after: int | None = None, calls: list | None = None):
        self.fail_after = fail_after
        self.calls = calls if calls is not None else []

    def mask(self, image, klass=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("killed")
        self.calls.append(klass)
        w, h = image.size
        a = np.zeros((h, w), np.float32)
        a[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 0.9
        a[h // 4, w // 4] = 0.55
        return a


def photo(n: int) -> bytes:
    """A small white studio photo with a dark product, different per n."""
    img = Image.new("RGB", (96, 80), (255, 255, 255))
    img.paste((30 + 10 * n, 40, 60), (16 + n, 12, 70 + n, 66))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture
def shop(tmp_path) -> Path:
    """manifest.jsonl with 6 photos (one described as glass, one unclassed)."""
    (tmp_path / "img").mkdir()
    with ManifestWriter(tmp_path / "manifest.jsonl") as w:
        for n in range(6):
            data = photo(n)
            (tmp_path / "img" / f"p{n}.jpg").write_bytes(data)
            w.append(ManifestRecord(id=f"p{n}", path=f"img/p{n}.jpg", sha256=hashlib.sha256(data).hexdigest(),
                                    width=96, height=80, klass=None if n == 5 else ("chair", "couch")[n % 2],
                                    title="POKAL glass" if n == 3 else f"Product {n}", category="Chairs"))
    return tmp_path / "manifest.jsonl"


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), temp files excluded."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def ray_local():
    """One small local Ray for the module (workers import this checkout)."""
    ray = pytest.importorskip("ray")
    # Test-defined classes (the fake teacher) travel by value: Ray workers cannot import test modules.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
             log_to_driver=False)
    yield ray
    ray.shutdown()


def _label_cfg(shop: Path, out: Path) -> LabelConfig:
    return LabelConfig(manifest=shop, out=out / "labels", classes=CLASSES, include_unclassed=True,
                       cache=out / "cache")


def test_cutouts_and_labels_are_identical_on_both_engines(shop, tmp_path, ray_local):
    local = make_cutouts(str(shop), str(tmp_path / "local"), str(MODELS), EngineConfig("local"))
    on_ray = make_cutouts(str(shop), str(tmp_path / "ray"), str(MODELS), EngineConfig("ray", workers=2,
                                                                                      batch_size=2))
    assert local.ok == on_ray.ok == 6 and local.failed == on_ray.failed == 0
    made = tree(tmp_path / "local")
    assert len(made) == 12 and made == tree(tmp_path / "ray")
    assert sum(name.split("/")[0].endswith("g") for name in made) == 2  # the glass product's key

    filled, labelled = label_with_engine(_label_cfg(shop, tmp_path / "l1"), SquareTeacher, "fake",
                                         EngineConfig("local"))
    filled_ray, labelled_ray = label_with_engine(_label_cfg(shop, tmp_path / "l2"), SquareTeacher, "fake",
                                                 EngineConfig("ray", workers=2, batch_size=2))
    assert filled.ok == filled_ray.ok == 6 and labelled.ok == labelled_ray.ok == 6
    assert labelled.from_cache == labelled_ray.from_cache == 6  # the masks came from the cache, no teacher call
    first, second = tree(tmp_path / "l1"), tree(tmp_path / "l2")
    assert len([k for k in first if k.startswith("labels/masks/")]) == 6 and first == second


def test_a_killed_run_resumes_without_redoing_work(shop, tmp_path, ray_local):
    cfg = _label_cfg(shop, tmp_path)
    with pytest.raises(RuntimeError, match="killed"):
        label_with_engine(cfg, lambda: SquareTeacher(fail_after=4), "fake", EngineConfig("local", batch_size=2))
    assert len(list((tmp_path / "cache" / "fake").rglob("*.png"))) == 4
    calls: list = []
    filled, labelled = label_with_engine(cfg, lambda: SquareTeacher(calls=calls), "fake", EngineConfig("local"))
    assert (filled.skipped_done, filled.ok, len(calls)) == (4, 2, 2)
    assert labelled.ok == 6

    # Cut-outs: a first run stopped after 3 photos (here: a manifest cut short), then the rest on Ray.
    lines = shop.read_text().splitlines()
    partial = shop.with_name("partial.jsonl")
    partial.write_text("\n".join(lines[:3]) + "\n")
    assert make_cutouts(str(partial), str(tmp_path / "c"), str(MODELS), EngineConfig("local")).ok == 3
    rest = make_cutouts(str(shop), str(tmp_path / "c"), str(MODELS), EngineConfig("ray", workers=2))
    assert (rest.skipped_done, rest.ok) == (3, 3)
    assert tree(tmp_path / "c") == tree(_full_run(shop, tmp_path / "full"))


def _full_run(shop: Path, out: Path) -> Path:
    make_cutouts(str(shop), str(out), str(MODELS), EngineConfig("local"))
    return out


def test_a_changed_photo_fails_instead_of_a_wrong_entry(shop, tmp_path):
    (shop.parent / "img" / "p2.jpg").write_bytes(photo(9))
    summary = make_cutouts(str(shop), str(tmp_path / "out"), str(MODELS), EngineConfig("local"))
    assert (summary.ok, summary.failed) == (5, 1) and "does not match" in summary.errors["p2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_shop(shop: Path, shop_bucket: str, out_bucket: str):
    """A moto S3 server on 127.0.0.1 holding the shop's manifest and photos under s3://<shop_bucket>/ikea/ and an
    empty out_bucket; yields (boto3 client, endpoint). Credentials are moto's "testing" pair, passed explicitly."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
        for bucket in (shop_bucket, out_bucket):
            s3.create_bucket(Bucket=bucket)
        s3.upload_file(str(shop), shop_bucket, "ikea/manifest.jsonl")
        for photo_file in (shop.parent / "img").iterdir():
            s3.upload_file(str(photo_file), shop_bucket, f"ikea/img/{photo_file.name}")
        yield s3, endpoint
    finally:
        server.stop()


def test_s3_in_and_out_against_moto(shop, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")  # the workers of this (local) engine read them from the environment
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto_shop(shop, "shop", "cutouts") as (s3, endpoint):
        opts = {"client_kwargs": {"endpoint_url": endpoint}, "skip_instance_cache": True}
        done = make_cutouts("s3://shop/ikea/manifest.jsonl", "s3://cutouts/cache", str(MODELS),
                            EngineConfig("local"), storage_options=opts)
        assert (done.ok, done.failed) == (6, 0)
        local = tree(_full_run(shop, tmp_path / "local"))
        listed = s3.list_objects_v2(Bucket="cutouts", Prefix="cache/")["Contents"]
        remote = {o["Key"][len("cache/"):]: s3.get_object(Bucket="cutouts", Key=o["Key"])["Body"].read()
                  for o in listed}
        assert remote == local
        again = make_cutouts("s3://shop/ikea/manifest.jsonl", "s3://cutouts/cache", str(MODELS),
                             EngineConfig("local"), storage_options=opts)
        assert (again.skipped_done, again.ok) == (6, 0)
        # A folder / prefix of photos with no manifest: hashed on listing, same entries (no glass from a title).
        prefix = make_cutouts("s3://shop/ikea/img", str(tmp_path / "from-prefix"), str(MODELS),
                              EngineConfig("local"), storage_options=opts)
        assert prefix.ok == 6
        meta = json.loads(FsStorage(tmp_path / "from-prefix").read(sorted(tree(tmp_path / "from-prefix"))[0]))
        assert meta["model"]["name"]

        # Labelling as on a cluster: workers read the photos from S3 and fill an S3 label cache, copied back here.
        calls: list = []
        remote = Remote(photo_root="s3://shop/ikea", cache_url="s3://cutouts/label-cache", storage_options=opts)
        filled, labelled = label_with_engine(_label_cfg(shop, tmp_path / "lab"), lambda: SquareTeacher(calls=calls),
                                             "fake", EngineConfig("local"), remote)
        assert (filled.ok, labelled.ok, labelled.from_cache, len(calls)) == (6, 6, 6, 6)
        listed = s3.list_objects_v2(Bucket="cutouts", Prefix="label-cache/fake/")["KeyCount"]
        assert listed == 6 and len(list((tmp_path / "lab" / "cache" / "fake").rglob("*.png"))) == 6


def test_s3_in_and_out_on_ray(shop, tmp_path, ray_local):
    """The cluster path: Ray workers read photos from S3 and write cut-outs and label-cache entries to S3 (moto),
    byte for byte what the local engine writes to a folder."""
    # Own buckets: moto keeps its state per process, and the other S3 test fills "shop" and "cutouts".
    with moto_shop(shop, "shop-ray", "cutouts-ray") as (s3, endpoint):
        # Credentials travel in the storage options: Ray workers do not see this process's environment.
        opts = {"key": "testing", "secret": "testing", "skip_instance_cache": True,
                "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        done = make_cutouts("s3://shop-ray/ikea/manifest.jsonl", "s3://cutouts-ray/cache", str(MODELS),
                            EngineConfig("ray", workers=2, batch_size=2), storage_options=opts)
        assert (done.ok, done.failed) == (6, 0)
        listed = s3.list_objects_v2(Bucket="cutouts-ray", Prefix="cache/")["Contents"]
        remote = {o["Key"][len("cache/"):]: s3.get_object(Bucket="cutouts-ray", Key=o["Key"])["Body"].read()
                  for o in listed}
        assert remote == tree(_full_run(shop, tmp_path / "local"))

        remote_cfg = Remote(photo_root="s3://shop-ray/ikea", cache_url="s3://cutouts-ray/label-cache", storage_options=opts)
        filled, labelled = label_with_engine(_label_cfg(shop, tmp_path / "lab"), SquareTeacher, "fake",
                                             EngineConfig("ray", workers=2, batch_size=2), remote_cfg)
        assert (filled.ok, labelled.ok, labelled.from_cache) == (6, 6, 6)
        assert s3.list_objects_v2(Bucket="cutouts-ray", Prefix="label-cache/fake/")["KeyCount"] == 6
        local_filled, _ = label_with_engine(_label_cfg(shop, tmp_path / "lab-local"), SquareTeacher, "fake",
                                            EngineConfig("local"))
        assert local_filled.ok == 6
        assert tree(tmp_path / "lab" / "cache") == tree(tmp_path / "lab-local" / "cache")


def test_the_command_lines(shop, tmp_path, monkeypatch, capsys):
    import training.teacher
    from training.cli import main

    class FakeISNet(SquareTeacher):
        name = "isnet"

        def __init__(self, cfg):
            super().__init__()

    monkeypatch.setattr(training.teacher, "ISNetTeacher", FakeISNet)
    args = ["label", "--manifest", str(shop), "--out", str(tmp_path / "labels"), "--cache", str(tmp_path / "cache"),
            "--include-unclassed"]
    assert main(args) == 0
    assert "teacher: 6 photos" in capsys.readouterr().out
    assert len(list((tmp_path / "cache" / "isnet").rglob("*.png"))) == 6
    assert main(args) == 0 and "teacher: 0 photos" in capsys.readouterr().out  # all done: nothing redone
    assert main(["cutouts", "--source", str(shop), "--out", str(tmp_path / "cut"), "--model-dir", str(MODELS)]) == 0
    assert "cut-outs: 6 made" in capsys.readouterr().out
