"""Model 2.0 split: ikea as 1.x split it, other collections by near-duplicate group, with source and background."""
import json

import numpy as np
from PIL import Image

from core.manifest import ManifestRecord, ManifestWriter, sha256_file
from training.dataset import (SourceSpec, SplitConfig, assign_splits, build_combined_dataset, combined_splits,
                              group_split, load_dataset_file, select)
from training.groups import near_duplicate_groups, photo_hash

CLASSES = ("background", "couch", "chair", "bed")


def _texture(seed, size=96):
    """A random smooth texture: photos that pHash tells apart."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.BICUBIC)


def _collection(root, name, photos):
    """photos: [(id, class, PIL image)] -> manifest + labels (all ok) under root/name."""
    (root / name / "img").mkdir(parents=True)
    labels = root / name / "labels"
    (labels / "masks").mkdir(parents=True)
    (labels / "alpha").mkdir()
    manifest = root / name / "manifest.jsonl"
    lines = []
    with ManifestWriter(manifest) as w:
        for pid, klass, image in photos:
            image.save(root / name / "img" / f"{pid}.png")
            mask = np.zeros(image.size[::-1], np.uint8)
            mask[10:40, 10:40] = CLASSES.index(klass) if klass else 255
            Image.fromarray(mask).save(labels / "masks" / f"{pid}.png")
            Image.fromarray((mask > 0).astype(np.uint8) * 255).save(labels / "alpha" / f"{pid}.png")
            w.append(ManifestRecord(id=pid, path=f"img/{pid}.png", sha256=sha256_file(root / name / "img" / f"{pid}.png"), width=image.size[0],
                                    height=image.size[1], klass=klass, sku=pid))
            lines.append(json.dumps({"id": pid, "status": "ok", "reason": None, "class": klass}))
    (labels / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return manifest, labels


def test_phash_groups_resized_copies_and_not_different_photos():
    a, b = _texture(1), _texture(2)
    hashes = {"a": photo_hash_of(a), "a_small": photo_hash_of(a.resize((40, 40))), "b": photo_hash_of(b)}
    groups = near_duplicate_groups(hashes)
    assert groups["a"] == groups["a_small"] == "a" and groups["b"] == "b"


def photo_hash_of(image):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.png"
        image.save(path)
        return photo_hash(path)


def test_groups_are_transitive_and_keyed_by_smallest_id():
    hashes = {"c": (0b0, 0), "b": (0xFF, 0), "a": (0xFFFF, 0), "z": (0xFFFFFFFF00000000, 0),
              "y": (0, 0xFFFFFFFF)}  # y: pHash like c, dHash far: not a copy
    assert near_duplicate_groups(hashes, max_distance=8) == {"a": "a", "b": "a", "c": "a", "y": "y", "z": "z"}


def test_combined_splits_pin_groups_to_ikea_and_exclude_straddlers():
    collections = {"i1": "ikea", "i2": "ikea", "i3": "ikea", "e1": "extra", "e2": "extra", "e3": "extra"}
    legacy = {"i1": "test", "i2": "train", "i3": "val"}
    groups = {"i1": "e1", "e1": "e1", "i2": "e2", "i3": "e2", "e2": "e2", "e3": "e3"}
    out = combined_splits(collections, legacy, groups, (0.7, 0.1, 0.2))
    assert out == {"i1": "test", "i2": "train", "i3": "val", "e1": "test", "e2": "excluded",
                   "e3": group_split("e3", (0.7, 0.1, 0.2))}


def test_build_combined_dataset(tmp_path):
    ikea = [(f"i{n:02d}", ["couch", "chair", None][n % 3], _texture(100 + n)) for n in range(15)]
    ikea_manifest, ikea_labels = _collection(tmp_path, "ikea", ikea)
    extra = [(f"x{n:02d}", "bed", _texture(200 + n)) for n in range(30)]
    extra.append(("x_copy", "bed", _texture(205).resize((60, 60))))  # x05 resized
    extra.append(("x_ikea", "chair", _texture(101).resize((70, 70))))  # i01 resized, in the extra set
    extra_manifest, extra_labels = _collection(tmp_path, "extra", extra)
    csv_path = tmp_path / "products.csv"
    csv_path.write_text("id,source,background\n" + "".join(
        f"{pid},handika,{['scene', 'plain', 'white'][n % 3]}\n" for n, (pid, _, _) in enumerate(extra)))
    (tmp_path / "review.jsonl").write_text(json.dumps({"id": "x07", "status": "rejected", "reason": "split"}) + "\n")
    out = tmp_path / "dataset.json"
    items = build_combined_dataset(
        [SourceSpec("ikea", ikea_manifest, ikea_labels),
         SourceSpec("extra", extra_manifest, extra_labels, review=tmp_path / "review.jsonl", products_csv=csv_path)],
        out, CLASSES, SplitConfig(hash_cache=tmp_path / "phash.json"))
    by_id = {it.id: it for it in items}
    # ikea: exactly 1.x's split (by product-id hash, stratified by class)
    by_class = {}
    for pid, klass, _ in ikea:
        by_class.setdefault(klass, []).append(pid)
    assert {pid: by_id[pid].split for pid, _, _ in ikea} == assign_splits(by_class)
    assert by_id["x_copy"].split == by_id["x05"].split and by_id["x_copy"].group == "x05"
    assert by_id["x_ikea"].split == by_id["i01"].split and by_id["x_ikea"].group == "i01"
    assert "x07" not in by_id  # rejected by review
    assert by_id["x01"].background == "plain" and by_id["x01"].source == "handika"
    assert by_id["x01"].collection == "extra" and by_id["i01"].collection == "ikea"
    assert {it.split for it in items if it.collection == "extra"} >= {"train", "test"}
    assert load_dataset_file(out) == items
    doc = json.loads(out.read_text())
    assert doc["version"] == 2 and doc["dropped"] == {"extra: rejected by review": 1}


def test_generated_items_rejected_by_review_are_left_out(tmp_path):
    from dataclasses import asdict

    from training.dataset import Item

    manifest, labels = _collection(tmp_path, "ikea", [(f"i{n}", "couch", _texture(300 + n)) for n in range(3)])
    negatives = [Item(f"neg-test-room-{n}", "i.png", "m.png", "a.png", None, "test", collection="negative",
                      source="room", kind="negative") for n in range(3)]
    generated = tmp_path / "negatives.json"
    generated.write_text(json.dumps({"items": [asdict(it) for it in negatives]}))
    review = tmp_path / "review_negatives.jsonl"
    review.write_text(json.dumps({"id": "neg-test-room-1", "status": "rejected", "reason": "main product: bed"}) + "\n")
    items = build_combined_dataset([SourceSpec("ikea", manifest, labels)], tmp_path / "d.json", CLASSES,
                                   SplitConfig(hash_cache=tmp_path / "phash.json", generated=[generated],
                                               generated_review=review))
    assert [it.id for it in items if it.kind == "negative"] == ["neg-test-room-0", "neg-test-room-2"]
    assert json.loads((tmp_path / "d.json").read_text())["dropped"] == {"negative: rejected by review": 1}


def test_select_keeps_negatives_for_training_only():
    from training.dataset import Item

    items = [Item("n", "i", "m", "a", None, split, kind="negative") for split in ("train", "test")]
    items.append(Item("p", "i", "m", "a", "couch", "test"))
    assert [it.id for it in select(items, "train", CLASSES)] == ["n"]
    assert [it.id for it in select(items, "test", CLASSES)] == ["p"]


def test_augment_recolours_studio_backgrounds_only():
    import tensorflow as tf

    from training.dataset import Item, PipelineConfig, augment, recolourable

    cfg = PipelineConfig(input_size=8, scale_range=(1.0, 1.0), background_p=1.0, jitter=0.0)
    image = tf.fill((8, 8, 3), 100.0)
    mask = tf.zeros((8, 8, 1), tf.uint8)
    alpha = tf.zeros((8, 8, 1))  # no product pixel: all background
    scene, _, _ = augment(image, mask, alpha, cfg, studio=0.0)
    studio, _, _ = augment(image, mask, alpha, cfg, studio=1.0)
    assert np.allclose(scene.numpy(), 100.0)  # a room stays a room
    assert np.ptp(studio.numpy().reshape(-1, 3), axis=0).max() < 1e-3 and not np.allclose(studio.numpy(), 100.0)
    assert recolourable(Item("a", "i", "m", "a", "bed", "train", background="white"))
    assert recolourable(Item("a", "i", "m", "a", "bed", "train"))  # 1.x's ikea items: studio shots
    assert not recolourable(Item("a", "i", "m", "a", "bed", "train", background="scene"))
    assert not recolourable(Item("a", "i", "m", "a", None, "train", kind="negative"))
