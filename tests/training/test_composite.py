"""Compositing and the negative set: deterministic, labels follow the pasted product, negatives are empty."""
import numpy as np
from PIL import Image

import pytest

from training.composite import (CompositeConfig, NegativeConfig, SceneNegativeConfig, composite_one, empty_crop,
                                make_composites, make_negatives, make_scene_negatives, room_split)
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


def _alpha(box, shape=(100, 100)):
    """An alpha map with the product filling `box` (top, bottom, left, right)."""
    alpha = np.zeros(shape, np.uint8)
    t, b, l, r = box
    alpha[t:b, l:r] = 255
    return alpha


@pytest.mark.parametrize("box, found", [
    ((0, 100, 0, 100), False),  # the product fills the photo: nothing beside it
    ((10, 100, 10, 90), False),  # bands of 7 and 7 px: too small for a 15% crop
    ((20, 100, 20, 80), True),  # a tightly framed shop photo: the 17 px of wall above the sofa
    ((50, 100, 20, 80), True),  # a bed in the lower half: the wall above it
    ((0, 100, 0, 40), True),  # a chair on the left: the right side
    ((0, 0, 0, 0), False),  # no product at all: nothing to crop beside
])
def test_empty_crop_finds_room_beside_the_product_only(box, found):
    alpha = _alpha(box)
    for seed in range(20):
        crop = empty_crop(alpha, np.random.default_rng(seed))
        assert (crop is not None) == found
        if crop:
            left, top, right, bottom = crop
            assert right - left >= 15 and bottom - top >= 15
            assert 0.5 <= (right - left) / (bottom - top) <= 2.0
            assert alpha[top:bottom, left:right].max() == 0


def test_scene_negatives_crop_beside_the_product_by_the_photos_split(tmp_path):
    items = []
    for n, split in enumerate(["train"] * 4 + ["val"] * 2 + ["test"] * 2):
        image = np.full((100, 100, 3), 20 + 25 * n, np.uint8)
        image[60:, 20:80] = (200, 30, 30)  # the product: never in a crop
        alpha = _alpha((60, 100, 20, 80))
        Image.fromarray(image).save(tmp_path / f"p{n}.png")
        Image.fromarray(alpha).save(tmp_path / f"p{n}.alpha.png")
        items.append(Item(f"p{n}", str(tmp_path / f"p{n}.png"), "m", str(tmp_path / f"p{n}.alpha.png"), "bed",
                          split, background="scene", group=f"g{n}"))
    items.append(Item("w", "x", "y", "z", "bed", "train", background="white"))  # not a scene: never cropped
    out = make_scene_negatives(items, _rooms(tmp_path, 30),
                               SceneNegativeConfig(out=tmp_path / "neg", count=4, room_views=3))
    crops = [it for it in out if it.source == "scene-crop"]
    assert sorted(it.split for it in crops) == ["train"] * 4 + ["val"]  # val: a fifth; test: none
    assert {it.group for it in crops if it.split == "val"} <= {"g4", "g5"}  # a crop stays in its photo's group
    assert sum(it.source == "room-view" and it.split == "train" for it in out) == 3
    for it in out:
        assert it.kind == "negative" and np.asarray(Image.open(it.mask)).max() == 0
        if it.source == "scene-crop":
            pixels = np.asarray(Image.open(it.image)).astype(int)
            assert not ((pixels[..., 0] > 150) & (pixels[..., 1] < 80)).any()  # none of the red product
    assert load_dataset_file(tmp_path / "neg" / "items.json") == out
