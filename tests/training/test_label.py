"""Labelling logic with a fake teacher (no ONNX model needed)."""
import json

import numpy as np
from PIL import Image

from core.manifest import ManifestRecord, ManifestWriter
from training.dataset import build_dataset_file
from training.label import UNCLASSED, LabelConfig, clean_mask, label_manifest, upright_path

CLASSES = ("background", "couch", "chair")


class SquareTeacher:
    """Foreground is a centred square covering `side` of the image, plus one tiny speck."""

    name = "fake"

    def __init__(self, side: float = 0.5):
        self.side = side
        self.seen: list = []

    def mask(self, image, klass=None):
        self.seen.append(klass)
        w, h = image.size
        a = np.zeros((h, w), np.float32)
        s0, s1 = int(h * (1 - self.side) / 2), int(h * (1 + self.side) / 2)
        a[s0:s1, s0:s1] = 0.9
        a[0, 0] = 1.0  # a speck
        return a


def test_clean_mask_drops_specks():
    a = np.zeros((100, 100), np.float32)
    a[10:60, 10:60] = 0.8
    a[90, 90] = 0.9
    a[95:97, 5:7] = 0.3  # below threshold
    m = clean_mask(a, 0.5, 0.002)
    assert m.sum() == 2500 and not m[90, 90]


def _manifest(tmp_path, classes):
    img_dir = tmp_path / "img"
    img_dir.mkdir()
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(path) as w:
        for i, klass in enumerate(classes):
            Image.new("RGB", (64, 64), "white").save(img_dir / f"{i}.png")
            w.append(ManifestRecord(id=str(i), path=f"img/{i}.png", sha256="0" * 64, width=64, height=64,
                                    klass=klass))
    return path


def test_label_manifest_writes_class_ids_and_resumes(tmp_path):
    manifest = _manifest(tmp_path, ["chair", None, "couch"])
    cfg = LabelConfig(manifest=manifest, out=tmp_path / "labels", classes=CLASSES, include_unclassed=True)
    teacher = SquareTeacher()
    s = label_manifest(cfg, teacher)
    assert s.ok == 3
    assert set(teacher.seen) == {"chair", "couch", None}  # the product's class reaches the teacher
    chair = np.asarray(Image.open(cfg.out / "masks" / "0.png"))
    assert set(np.unique(chair)) == {0, 2} and chair[0, 0] == 0 and chair[32, 32] == 2
    assert np.asarray(Image.open(cfg.out / "masks" / "1.png"))[32, 32] == UNCLASSED
    assert np.asarray(Image.open(cfg.out / "alpha" / "2.png"))[32, 32] == round(0.9 * 255)
    again = label_manifest(cfg, SquareTeacher())
    assert again.ok == 0 and again.skipped_done == 3
    assert len((cfg.out / "labels.jsonl").read_text().splitlines()) == 3


def test_label_rejects_with_reasons(tmp_path):
    manifest = _manifest(tmp_path, ["chair", None])
    (tmp_path / "img" / "0.png").write_bytes(b"\x89PNG broken")
    cfg = LabelConfig(manifest=manifest, out=tmp_path / "labels", classes=CLASSES)
    s = label_manifest(cfg, SquareTeacher())
    assert s.rejected == {"unreadable": 1}  # the unclassed product is not even attempted
    (tmp_path / "b").mkdir()
    full = LabelConfig(manifest=_manifest(tmp_path / "b", ["chair"]), out=tmp_path / "labels-b", classes=CLASSES)
    assert label_manifest(full, SquareTeacher(side=1.0)).rejected == {"full-mask": 1}
    entries = [json.loads(x) for x in (full.out / "labels.jsonl").read_text().splitlines()]
    assert entries[0]["status"] == "rejected" and entries[0]["reason"] == "full-mask"


def test_an_exif_rotated_photo_gets_an_upright_copy_for_training(tmp_path, malformed_exif_jpeg):
    # Stored 64 wide x 48 high with orientation 6 (and a malformed EXIF tag): the mask is made upright (48x64), and
    # tf.io, which ignores EXIF, must read an upright copy or image and mask would disagree.
    manifest = _manifest(tmp_path, ["chair", "couch"])
    (tmp_path / "img" / "0.png").unlink()
    stored = Image.new("RGB", (64, 48), "white")
    stored.paste((200, 0, 0), (0, 0, 8, 48))  # a red strip on the left: on top once upright
    (tmp_path / "img" / "0.png").write_bytes(malformed_exif_jpeg(stored))  # JPEG bytes; Pillow sniffs the format
    cfg = LabelConfig(manifest=manifest, out=tmp_path / "labels", classes=CLASSES)
    assert label_manifest(cfg, SquareTeacher()).ok == 2
    assert Image.open(cfg.out / "masks" / "0.png").size == (48, 64)
    copy = Image.open(upright_path(cfg.out, "0"))
    assert copy.size == (48, 64) and copy.getpixel((24, 2))[0] > 150 and copy.getpixel((24, 60))[1] > 150
    assert not upright_path(cfg.out, "1").exists()  # an upright photo needs no copy
    items = build_dataset_file(manifest, cfg.out, tmp_path / "dataset.json", CLASSES)
    paths = {it.id: it.image for it in items}
    assert paths["0"] == str(upright_path(cfg.out, "0").resolve())
    assert paths["1"] == str((tmp_path / "img" / "1.png").resolve())


def test_labelling_after_a_torn_index_line_starts_a_fresh_line(tmp_path):
    manifest = _manifest(tmp_path, ["chair", "couch"])
    cfg = LabelConfig(manifest=manifest, out=tmp_path / "labels", classes=CLASSES, limit=1)
    label_manifest(cfg, SquareTeacher())
    index = cfg.out / "labels.jsonl"
    index.write_text(index.read_text() + '{"id": "1", "sta')  # killed mid-write
    cfg.limit = None
    assert label_manifest(cfg, SquareTeacher()).ok == 1
    entries = [json.loads(x) for x in index.read_text().splitlines()]
    assert [e["id"] for e in entries] == ["0", "1"] and all(e["status"] == "ok" for e in entries)


def test_label_cache_round_trip_keeps_the_threshold():
    from training.label_cache import decode_alpha, encode_alpha

    alpha = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    back = decode_alpha(encode_alpha(alpha))
    assert back.shape == alpha.shape and np.abs(back - alpha).max() <= 0.5 / 15 + 1e-6
    near_half = np.abs(alpha - 0.5) > 1 / 30  # 16 levels: only values within half a level of 0.5 may flip
    assert ((back > 0.5) == (alpha > 0.5))[near_half].all()


def test_a_new_machine_relabels_from_the_cache_without_the_teacher(tmp_path):
    from training.label_cache import LabelCache, fill_from_labels

    manifest = _manifest(tmp_path, ["chair", "couch"])
    lines = manifest.read_text().splitlines()  # give the photos distinct content hashes
    manifest.write_text("\n".join(line.replace("0" * 64, f"{i:064x}") for i, line in enumerate(lines)) + "\n")
    first = LabelConfig(manifest=manifest, out=tmp_path / "a", classes=CLASSES, cache=tmp_path / "cache")
    assert label_manifest(first, SquareTeacher()).from_cache == 0
    assert len(list((tmp_path / "cache" / "fake").rglob("*.png"))) == 2

    class NoTeacher(SquareTeacher):
        def mask(self, image, klass=None):
            raise AssertionError("the teacher ran although the cache holds the photo")

    again = LabelConfig(manifest=manifest, out=tmp_path / "b", classes=CLASSES, cache=tmp_path / "cache")
    summary = label_manifest(again, NoTeacher())
    assert (summary.ok, summary.from_cache) == (2, 2)
    for name in ("0.png", "1.png"):  # the same masks as the teacher's own run
        assert (np.asarray(Image.open(first.out / "masks" / name)) ==
                np.asarray(Image.open(again.out / "masks" / name))).all()
    # Labels made without the cache are copied into it once.
    plain = LabelConfig(manifest=manifest, out=tmp_path / "c", classes=CLASSES)
    label_manifest(plain, SquareTeacher())
    cache = LabelCache(tmp_path / "cache2", "fake")
    assert fill_from_labels(manifest, plain.out, cache) == (2, 0)
    assert fill_from_labels(manifest, plain.out, cache) == (0, 2)
    (cache.path(f"{0:064x}")).write_bytes(b"damaged")
    assert cache.get(f"{0:064x}", (64, 64)) is None  # a damaged entry is a miss, not a crash
