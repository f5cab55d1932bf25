"""Split and input pipeline on tiny synthetic data."""
import numpy as np
import pytest

from training.dataset import (PipelineConfig, assign_splits, build_dataset_file, get_dataset, load_dataset_file,
                              mask_lookup)

from .conftest import CLASSES

OTHER_CLASSES = CLASSES + ("other",)


def test_splits_are_deterministic_stratified_and_stable():
    ids = {"a": [f"a{i}" for i in range(10)], "b": [f"b{i}" for i in range(3)], None: [f"n{i}" for i in range(5)]}
    s1 = assign_splits(ids)
    assert s1 == assign_splits({k: list(reversed(v)) for k, v in ids.items()})  # order of input does not matter
    count = lambda prefix, split: sum(1 for k, v in s1.items() if k.startswith(prefix) and v == split)  # noqa: E731
    assert (count("a", "train"), count("a", "val"), count("a", "test")) == (6, 2, 2)
    assert (count("b", "train"), count("b", "val"), count("b", "test")) == (1, 1, 1)  # tiny class: one in each
    grown = assign_splits({**ids, None: ids[None] + [f"n{i}" for i in range(5, 40)]})
    assert all(grown[k] == s1[k] for k in ids[None])  # unclassed products keep their split as more arrive
    with pytest.raises(ValueError):
        assign_splits(ids, (0.5, 0.2, 0.2))


def test_dataset_file_round_trip(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    assert load_dataset_file(tmp_path / "ds.json") == items
    assert {it.split for it in items if it.klass == "couch"} == {"train", "val", "test"}


@pytest.mark.parametrize("classes, keep_unclassed, expected_255", [
    (OTHER_CLASSES, False, 3), (OTHER_CLASSES, True, 3),  # `other` wins: unclassed photos are that class
    (CLASSES, False, 0), (CLASSES, True, 255),  # partial label kept as-is for the loss
])
def test_mask_lookup_maps_unclassed(classes, keep_unclassed, expected_255):
    table = mask_lookup(classes, keep_unclassed)
    assert table[255] == expected_255 and table[:3] == [0, 1, 2]


def _arrays(ds):
    images, masks = zip(*[(i.numpy(), m.numpy()) for i, m in ds])
    return np.concatenate(images), np.concatenate(masks)


def test_val_pipeline_keeps_pairs_aligned_and_ids_intact(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    cfg = PipelineConfig(input_size=32, batch_size=4)
    images, masks = _arrays(get_dataset(items, "val", OTHER_CLASSES, cfg))
    assert images.shape[1:] == (32, 32, 3) and masks.shape[1:] == (32, 32, 1) and images.dtype == np.float32
    assert set(np.unique(masks)) <= {0, 1, 2, 3}  # NEAREST: no fractional ids at edges, 255 became 'other'
    red = (images[..., 0] > 200) & (images[..., 1] < 80) & (images[..., 2] < 80)
    couch = masks[..., 0] == 1
    assert couch.any() and (red == couch).mean() > 0.98  # couch pixels are the red ones (bilinear edges aside)
    again, _ = _arrays(get_dataset(items, "val", OTHER_CLASSES, cfg))
    assert np.array_equal(images, again)  # no augmentation, no shuffling outside train


@pytest.mark.parametrize("stored, fmt", [((500, 500), "PNG"), ((500, 333), "PNG"), ((120, 90), "PNG"),
                                         ((500, 500), "JPEG")])  # JPEG: the web app's reduced-scale decode
def test_pipeline_resizes_photos_exactly_like_the_web_app(tmp_path, stored, fmt):
    # Stripes every 3 pixels: a resize that smooths (Pillow's Image.resize) and one that samples (tf.image.resize,
    # what the model is trained on) differ by ~40 grey levels here; the web app must sample like training.
    from PIL import Image

    from training.dataset import Item
    from core.images import decode

    w, h = stored
    stripes = np.zeros((h, w, 3), np.uint8)
    stripes[:, ::3] = 255
    photo, mask = tmp_path / "p.png", tmp_path / "m.png"
    Image.fromarray(stripes).save(photo, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    Image.fromarray(np.zeros((h, w), np.uint8)).save(mask)
    item = Item(id="p", image=str(photo), mask=str(mask), alpha=str(mask), klass="couch", split="val")
    images, _ = _arrays(get_dataset([item], "val", CLASSES, PipelineConfig(input_size=160, batch_size=1)))
    served = decode(photo.read_bytes(), (160, 160), max_pixels=10**7, need_full=False, guide_side=250).model_input
    # uint8 rounding apart (and two JPEG decoders' rounding)
    assert np.abs(images[0] - np.asarray(served, np.float32)).mean() < (0.6 if fmt == "PNG" else 2.0)
    smoothed = np.asarray(Image.fromarray(stripes).resize((160, 160), Image.BILINEAR), np.float32)
    assert w < 160 or np.abs(images[0] - smoothed).mean() > 10  # the check can tell the two apart


def test_train_augmentation_moves_image_and_mask_together(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    cfg = PipelineConfig(input_size=32, batch_size=8, jitter=0.0, background_p=0.0)  # geometry only
    images, masks = _arrays(get_dataset(items, "train", OTHER_CLASSES, cfg))
    assert set(np.unique(masks)) <= {0, 1, 2, 3}
    white = images.min(-1) > 200
    agree = (white == (masks[..., 0] == 0)).mean()
    assert agree > 0.97  # only the bilinear edge pixels may disagree
    second, _ = _arrays(get_dataset(items, "train", OTHER_CLASSES, cfg).take(100))
    plain, _ = _arrays(get_dataset(items, "train", OTHER_CLASSES, cfg, shuffle=False))
    assert not np.array_equal(images, second) or not np.array_equal(images, plain)


def test_with_alpha_target_carries_aligned_class_ids_and_alpha(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    cfg = PipelineConfig(input_size=32, batch_size=8, jitter=0.0, background_p=0.0)
    _, targets = _arrays(get_dataset(items, "train", OTHER_CLASSES, cfg, with_alpha=True))
    assert targets.shape[1:] == (32, 32, 2) and targets.dtype == np.float32
    ids, alpha = targets[..., 0], targets[..., 1]
    assert set(np.unique(ids)) <= {0, 1, 2, 3}
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert ((alpha > 0.5) == (ids > 0)).mean() > 0.97  # augmented together: only bilinear edges may disagree


def test_unclassed_left_out_without_other_class(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    _, masks = _arrays(get_dataset(items, "train", CLASSES, PipelineConfig(input_size=32)))
    n_classed = sum(1 for it in items if it.split == "train" and it.klass)
    assert len(masks) == n_classed and 255 not in masks


@pytest.mark.parametrize("split, unclassed", [("train", True), ("val", False), ("test", False)])
def test_unclassed_fg_keeps_255_in_train_only(tiny_data, tmp_path, split, unclassed):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    assert any(it.split == split and it.klass is None for it in items)  # the fixture has unclassed in every split
    cfg = PipelineConfig(input_size=32, batch_size=8, cache_dir=tmp_path / "cache")
    _, masks = _arrays(get_dataset(items, split, CLASSES, cfg, unclassed_fg=True))
    expected = sum(1 for it in items if it.split == split and (it.klass or unclassed))
    assert len(masks) == expected and (255 in masks) == unclassed
    assert set(np.unique(masks)) <= {0, 1, 2, 255}  # augmentation's crop/pad and NEAREST resize keep 255 exact


def test_unclassed_fg_and_other_do_not_share_a_cache(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    cfg = PipelineConfig(input_size=32, batch_size=8, cache_dir=tmp_path / "cache")
    _, as_other = _arrays(get_dataset(items, "train", OTHER_CLASSES, cfg, shuffle=False))  # same photos, 255 -> 3
    _, partial = _arrays(get_dataset(items, "train", CLASSES, cfg, shuffle=False, unclassed_fg=True))
    assert 3 in as_other and 255 not in as_other and 255 in partial and 3 not in partial
