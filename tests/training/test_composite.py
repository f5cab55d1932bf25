"""Compositing and the negative set: deterministic, labels follow the pasted product, negatives are empty."""
import numpy as np
from PIL import Image

from training.composite import (CompositeConfig, NegativeConfig, composite_one, make_composites, make_negatives,
                                room_split)
from training.dataset import Item, load_dataset_file

CLASSES = ("background", "couch", "chair")


def _studio(tmp_path, pid, klass):
    """A studio photo on white: a red block with its mask and alpha."""
    image = np.full((60, 80, 3), 255, np.uint8)
    image[10:50, 20:60] = (200, 30, 30)
    mask = np.zeros((60, 80), np.uint8)
    mask[10:50, 20:60] = CLASSES.index(klass)
    paths = [tmp_path / f"{pid}.{ext}" for ext in ("png", "mask.png", "alpha.png")]
    Image.fromarray(image).save(paths[0])
    Image.fromarray(mask).save(paths[1])
    Image.fromarray((mask > 0).astype(np.uint8) * 255).save(paths[2])
    return Item(pid, str(paths[0]), str(paths[1]), str(paths[2]), klass, "train")


def _rooms(tmp_path, n=12):
    rooms = tmp_path / "rooms"
    rooms.mkdir()
    rng = np.random.default_rng(0)
    for k in range(n):
        Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(rooms / f"room{k}.jpg")
    return rooms


def test_composite_one_pastes_the_product_with_its_class_on_the_floor():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        item = _studio(Path(tmp), "a", "chair")
        bg = np.full((200, 300, 3), 90.0, np.float32)
        cfg = CompositeConfig(out=Path(tmp), colour_match=(0.0, 0.0))
        image, mask, alpha = composite_one(item, bg, np.random.default_rng(3), cfg)
    assert image.shape == (200, 300, 3) and mask.shape == alpha.shape == (200, 300)
    assert set(np.unique(mask)) == {0, 2}
    ys, xs = np.nonzero(mask)
    assert 0.45 * 200 - 2 <= ys.max() - ys.min() + 1 <= 0.85 * 200 + 2  # furniture scale
    assert ys.max() + 1 >= 0.75 * 200  # its base on the lower part of the frame
    assert np.allclose(image[mask > 0].mean(0), (200, 30, 30), atol=3)  # the product's own colours (no matching)
    assert image[mask == 0].min() < 90  # the contact shadow darkens the floor somewhere


def test_make_composites_is_deterministic_and_train_only(tmp_path):
    items = [_studio(tmp_path, "a", "chair"), _studio(tmp_path, "b", "couch"),
             Item("s", "x", "y", "z", "couch", "train", background="scene"),  # a scene photo: never pasted
             Item("t", "x", "y", "z", "couch", "test")]  # a test product: never pasted
    rooms = _rooms(tmp_path)
    first = make_composites(items, rooms, CompositeConfig(out=tmp_path / "c1", count=6, seed=5))
    second = make_composites(items, rooms, CompositeConfig(out=tmp_path / "c2", count=6, seed=5))
    assert [it.source for it in first] == [it.source for it in second]
    assert {it.source for it in first} <= {"composite:a", "composite:b"}
    for a, b in zip(first, second):
        assert np.array_equal(np.asarray(Image.open(a.image)), np.asarray(Image.open(b.image)))
    assert all(it.split == "train" and it.kind == "composite" for it in first)
    assert load_dataset_file(tmp_path / "c1" / "items.json") == first
    for it in first:
        assert np.asarray(Image.open(it.mask)).max() == CLASSES.index(it.klass)


def test_negatives_are_empty_and_keep_rooms_apart(tmp_path):
    rooms = _rooms(tmp_path, 100)  # enough for every split to get rooms (val gets 3)
    per_kind = {"noise": 4, "blank": 4, "gradient": 4, "texture": 4, "wall": 4, "text": 4, "room": 4}
    items = make_negatives(rooms, NegativeConfig(out=tmp_path / "neg", per_kind=per_kind))
    assert {it.split for it in items} == {"train", "val", "test"}
    assert sum(it.split == "test" for it in items) == 7 * 2
    for it in items:
        assert it.kind == "negative" and it.klass is None
        assert np.asarray(Image.open(it.mask)).max() == 0 and np.asarray(Image.open(it.alpha)).max() == 0
    assert {room_split(f"room{k}.jpg") for k in range(100)} == {"train", "val", "test"}
