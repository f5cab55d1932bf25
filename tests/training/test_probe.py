"""Linear probe: fold assignment, the classifier on separable data, and an end-to-end run on tiny photos."""
import numpy as np
import pytest

from training.dataset import build_dataset_file
from training.probe import ProbeConfig, fit_predict, resolution_ceiling, run_probe, stratified_folds

from .conftest import CLASSES


def test_folds_share_every_class_and_are_deterministic():
    labels = ["a"] * 10 + ["b"] * 5 + ["c"] * 2
    fold = stratified_folds(labels, 5, seed=1)
    assert np.array_equal(fold, stratified_folds(labels, 5, seed=1))
    labels = np.array(labels)
    for c, per_fold in (("a", 2), ("b", 1)):
        assert np.bincount(fold[labels == c], minlength=5).tolist() == [per_fold] * 5
    assert len(set(fold[labels == "c"].tolist())) == 2  # 2 photos, 2 different folds
    assert sorted(np.bincount(fold, minlength=5).tolist()) == [3, 3, 3, 4, 4]  # small classes spread, not piled up


def test_folds_need_two():
    with pytest.raises(ValueError, match="at least 2 folds"):
        stratified_folds(["a", "b"], 1, seed=0)
    with pytest.raises(ValueError, match="at least 2 folds"):  # before any photo is read
        ProbeConfig(encoder_weights=None, folds=1)


def test_classifier_separates_separable_classes():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8) * 6
    y = np.repeat(np.arange(3), 200)
    x = centres[y] + rng.normal(0, 1, (600, 8))
    test_y = np.repeat(np.arange(3), 5)
    test_x = centres[test_y] + rng.normal(0, 1, (15, 8))
    assert np.array_equal(fit_predict(x, y, test_x, 3, steps=1000, dropout=0.0, seed=0), test_y)


def test_probe_end_to_end(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    cfg = ProbeConfig(encoder_weights=None, input_size=32, folds=2, repeats=2, steps=20)
    result = run_probe(cfg, items, CLASSES)
    photos = sum(1 for it in items if it.split in ("train", "val") and it.klass)
    assert result["photos"] == photos and result["classes"] == ["couch", "chair"]
    tap = result["taps"]["block_16_expand_relu"]
    assert np.array(tap["confusion"]).sum() == photos * 2  # every photo predicted once per repeat
    assert 0.0 <= tap["balanced_accuracy"] <= 1.0 and 0.0 <= tap["accuracy"] <= 1.0


def test_probe_needs_photos(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    with pytest.raises(ValueError, match="too few"):
        run_probe(ProbeConfig(encoder_weights=None, input_size=32, folds=50), items, CLASSES)


def test_resolution_ceiling(tiny_data, tmp_path):
    """The tiny photos' rectangles are 48 px wide: exact at 48×48, blurred edges cost IoU at 6×6."""
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    ceiling = resolution_ceiling(items, [48, 6])
    assert ceiling[48] == pytest.approx(1.0)
    assert 0.5 < ceiling[6] < 1.0


def test_unknown_tap_is_a_short_clear_error(tiny_data, tmp_path):
    manifest, labels = tiny_data
    items = build_dataset_file(manifest, labels, tmp_path / "ds.json", CLASSES)
    with pytest.raises(ValueError, match="MobileNetV2 has no layer 'nope'"):
        run_probe(ProbeConfig(encoder_weights=None, input_size=32, folds=2, taps=("nope",)), items, CLASSES)
