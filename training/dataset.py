"""Dataset split (deterministic, stratified by class, by product-id hash) and the tf.data input pipeline.

The dataset file (JSON) lists every labelled product with its image, mask and alpha paths, class and split. Masks
hold 0 background, k class id, 255 foreground of an unclassed product; the pipeline maps 255 to the `other` class when
the class list has one; else, with `unclassed_fg`, unclassed products join the train split with 255 kept (a partial
"some foreground class" label, see losses.make_loss); otherwise they are left out.
"""
from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.manifest import read_manifest, resolve_image_path

from .io import atomic_write_json
from .label import UNCLASSED, read_index, upright_path

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
OTHER = "other"


@dataclass
class Item:
    """One labelled product photo."""

    id: str
    image: str
    mask: str
    alpha: str
    klass: str | None
    split: str
    # Added for model 2.0; dataset files written before have none of these (the defaults are what they held).
    collection: str = "ikea"  # which test split it belongs to: ikea (studio) or extra (cross-shop)
    source: str | None = None  # shop / repository the photo came from
    background: str | None = None  # scene | plain | white (products.csv's heuristic), None when unknown
    group: str | None = None  # near-duplicate group (training.groups): never straddles splits
    kind: str = "photo"  # photo | composite (generated, train only) | negative (no product: class 0 everywhere)


@dataclass
class PipelineConfig:
    """How `get_dataset` reads and augments."""

    input_size: int = 160
    batch_size: int = 16
    seed: int = 42
    cache_dir: Path | None = None  # None: cache decoded/resized arrays in memory
    scale_range: tuple[float, float] = (0.7, 1.25)  # zoom out/in before the crop back to input_size
    background_p: float = 0.5  # chance of replacing the (white) studio background with a random colour
    jitter: float = 0.15  # brightness/contrast/saturation strength


def _hash_key(product_id: str) -> str:
    """Stable pseudo-random order for a product id (independent of Python's hash seed)."""
    return hashlib.sha256(product_id.encode("utf-8")).hexdigest()


def assign_splits(ids_by_class: dict[str | None, list[str]],
                  fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> dict[str, str]:
    """Split each class into train/val/test by product-id hash.

    Classed products: sorted by hash, cut at the exact fractions (≥1 val and test when n ≥ 3), so even 3 wine glasses
    are stratified. Unclassed products (key None) grow while labelling runs, so each goes by its own hash value
    against the fraction thresholds: a product never changes split when more are labelled.
    """
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    out: dict[str, str] = {}
    for klass, ids in ids_by_class.items():
        ordered = sorted(set(ids), key=_hash_key)
        if klass is None:
            for pid in ordered:
                u = int(_hash_key(pid)[:8], 16) / 0x100000000
                out[pid] = "train" if u < fractions[0] else ("val" if u < fractions[0] + fractions[1] else "test")
            continue
        n = len(ordered)
        n_val = round(n * fractions[1])
        n_test = round(n * fractions[2])
        if n >= 3:  # tiny classes (3 wine glasses) still get one example in each split
            n_val, n_test = max(1, n_val), max(1, n_test)
        n_train = n - n_val - n_test
        for i, pid in enumerate(ordered):
            out[pid] = "train" if i < n_train else ("val" if i < n_train + n_val else "test")
    return out


def build_dataset_file(manifest: Path, labels: Path, out: Path, classes: tuple[str, ...],
                       fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> list[Item]:
    """Write the dataset file from the manifest and the labels marked ok; returns its items."""
    index = read_index(labels / "labels.jsonl")
    if not index:
        raise FileNotFoundError(f"no labels in {labels}/labels.jsonl (run `python -m training label` first)")
    records = {r.id: r for r in read_manifest(manifest)}
    ok = [pid for pid, e in index.items() if e.get("status") == "ok" and pid in records]
    by_class: dict[str | None, list[str]] = {}
    for pid in ok:
        klass = records[pid].klass
        if klass is not None and klass not in classes:
            raise ValueError(f"{pid}: class {klass!r} is not in {classes}")
        by_class.setdefault(klass, []).append(pid)
    splits = assign_splits(by_class, fractions)
    def photo(pid: str) -> Path:
        turned = upright_path(labels, pid)  # labelling's upright copy of an EXIF-rotated photo, if it made one
        return turned if turned.is_file() else resolve_image_path(manifest, records[pid])

    items = [Item(id=pid, image=str(photo(pid).resolve()),
                  mask=str((labels / "masks" / f"{pid}.png").resolve()),
                  alpha=str((labels / "alpha" / f"{pid}.png").resolve()),
                  klass=records[pid].klass, split=splits[pid]) for pid in sorted(ok)]
    counts = {s: {} for s in SPLITS}
    for it in items:
        key = it.klass or OTHER
        counts[it.split][key] = counts[it.split].get(key, 0) + 1
    atomic_write_json(out, {"version": 1, "classes": list(classes), "fractions": list(fractions),
                            "counts": counts, "items": [it.__dict__ for it in items]})
    log.info("dataset file %s: %s", out, {s: sum(c.values()) for s, c in counts.items()})
    return items


@dataclass
class SourceSpec:
    """One labelled photo collection going into a combined dataset file."""

    collection: str  # "ikea" keeps the 1.x split; any other name is split by near-duplicate group
    manifest: Path
    labels: Path
    review: Path | None = None  # review.jsonl (training.review): its rejected photos are left out
    products_csv: Path | None = None  # the dataset's products.csv: `source` and `background` columns by id


@dataclass
class SplitConfig:
    """How the combined dataset is split."""

    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # the ikea collection: 1.x's split, unchanged
    group_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)  # other collections, by near-duplicate group
    max_distance: int = 4  # pHash and dHash bits (training.groups.MAX_DISTANCE)
    hash_cache: Path | None = None  # JSON {sha256: phash}: photos are hashed once
    generated: list[Path] = field(default_factory=list)  # items files of composites / negatives (own splits)
    # Decisions by eye on generated items (same format as a manual label review): a "negative" that shows a main
    # product (a room photo dominated by one bed, a wall crop that is one pendant lamp) is left out.
    generated_review: Path | None = None


def _photo_meta(path: Path | None) -> dict[str, dict[str, str]]:
    """products.csv rows by id (empty without a file)."""
    if path is None:
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def group_split(key: str, fractions: tuple[float, float, float]) -> str:
    """The split of a near-duplicate group by its key's hash: stable however many photos join later."""
    u = int(_hash_key(key)[:8], 16) / 0x100000000
    return "train" if u < fractions[0] else ("val" if u < fractions[0] + fractions[1] else "test")


def combined_splits(collections: dict[str, str], legacy: dict[str, str], groups: dict[str, str],
                    fractions: tuple[float, float, float]) -> dict[str, str]:
    """Splits of every id: ikea ids keep `legacy`; a group with an ikea member puts its other members in that
    member's split (or leaves them out, `excluded`, when 1.x's split already straddles the group); any other group
    goes by its key's hash."""
    group_legacy: dict[str, set[str]] = {}
    for pid, split in legacy.items():
        group_legacy.setdefault(groups.get(pid, pid), set()).add(split)
    out = {}
    for pid, collection in collections.items():
        if pid in legacy:
            out[pid] = legacy[pid]
            continue
        g = groups.get(pid, pid)
        pinned = group_legacy.get(g)
        if pinned is None:
            out[pid] = group_split(g, fractions)
        elif len(pinned) == 1:
            out[pid] = next(iter(pinned))
        else:
            log.warning("%s: near-duplicate of ikea photos in splits %s: left out", pid, sorted(pinned))
            out[pid] = "excluded"
    return out


def build_combined_dataset(sources: list[SourceSpec], out: Path, classes: tuple[str, ...],
                           cfg: SplitConfig | None = None) -> list[Item]:
    """The model 2.0 dataset file: every collection's reviewed labels, split by source and near-duplicate group
    (the ikea collection exactly as 1.x split it), plus generated items; returns its items."""
    from .groups import hash_photos, near_duplicate_groups
    from .review import rejected_ids

    cfg = cfg or SplitConfig()
    items: list[Item] = []
    collections: dict[str, str] = {}
    legacy: dict[str, str] = {}
    photos: dict[str, tuple[str, Path]] = {}
    chosen: dict[str, tuple[SourceSpec, object, dict]] = {}
    dropped = Counter()
    for spec in sources:
        index = read_index(spec.labels / "labels.jsonl")
        if not index:
            raise FileNotFoundError(f"no labels in {spec.labels}/labels.jsonl (run `python -m training label` first)")
        records = {r.id: r for r in read_manifest(spec.manifest)}
        rejected = rejected_ids(spec.review) if spec.review else set()
        meta = _photo_meta(spec.products_csv)
        by_class: dict[str | None, list[str]] = {}
        for pid, record in records.items():
            if pid in collections:
                raise ValueError(f"{pid}: id in two collections ({collections[pid]}, {spec.collection})")
            collections[pid] = spec.collection
            photos[pid] = (record.sha256, resolve_image_path(spec.manifest, record))
            if index.get(pid, {}).get("status") != "ok":
                dropped[f"{spec.collection}: not labelled ok"] += 1
                continue
            if pid in rejected:
                dropped[f"{spec.collection}: rejected by review"] += 1
                continue
            if record.klass is not None and record.klass not in classes:
                raise ValueError(f"{pid}: class {record.klass!r} is not in {classes}")
            chosen[pid] = (spec, record, meta.get(record.sku or pid, meta.get(pid, {})))
            by_class.setdefault(record.klass, []).append(pid)
        if spec.collection == "ikea":
            legacy.update(assign_splits(by_class, cfg.fractions))
    # Every manifest photo is hashed, labelled or not, so a group (and its split) does not change as labels arrive.
    groups = near_duplicate_groups(hash_photos(photos, cfg.hash_cache), cfg.max_distance)
    splits = combined_splits(collections, legacy, groups, cfg.group_fractions)
    for pid in sorted(chosen):
        spec, record, meta = chosen[pid]
        if splits[pid] == "excluded":
            dropped[f"{spec.collection}: near-duplicate across 1.x splits"] += 1
            continue
        turned = upright_path(spec.labels, pid)
        image = turned if turned.is_file() else resolve_image_path(spec.manifest, record)
        items.append(Item(id=pid, image=str(image.resolve()), mask=str((spec.labels / "masks" / f"{pid}.png").resolve()),
                          alpha=str((spec.labels / "alpha" / f"{pid}.png").resolve()), klass=record.klass,
                          split=splits[pid], collection=spec.collection,
                          source=meta.get("source") or record.source or spec.collection,
                          background=meta.get("background") or None, group=groups.get(pid, pid)))
    generated_rejected = rejected_ids(cfg.generated_review) if cfg.generated_review else set()
    for path in cfg.generated:
        for item in load_dataset_file(path):
            if item.id in generated_rejected:
                dropped[f"{item.kind}: rejected by review"] += 1
            else:
                items.append(item)
    straddling = sorted(g for g, ss in _splits_by_group(items).items() if len(ss) > 1)
    if straddling:
        log.warning("%d near-duplicate groups straddle splits (1.x's own ikea split): %s", len(straddling),
                    straddling[:5])
    counts = _counts(items)
    atomic_write_json(out, {"version": 2, "classes": list(classes), "fractions": list(cfg.fractions),
                            "group_fractions": list(cfg.group_fractions), "max_distance": cfg.max_distance,
                            "counts": counts, "dropped": dict(dropped), "items": [asdict(it) for it in items]})
    log.info("dataset file %s: %s; left out %s", out, counts["by_split"], dict(dropped))
    return items


def _splits_by_group(items: list[Item]) -> dict[str, set[str]]:
    """The splits each near-duplicate group's items sit in."""
    out: dict[str, set[str]] = {}
    for it in items:
        if it.group:
            out.setdefault(it.group, set()).add(it.split)
    return out


def _counts(items: list[Item]) -> dict:
    """Item counts by split, and by split × collection × kind × background (for the log and the dataset file)."""
    by_split = Counter(it.split for it in items)
    detail = Counter(f"{it.split}/{it.collection}/{it.kind}/{it.background or '-'}" for it in items)
    by_class = Counter(f"{it.split}/{it.klass or OTHER}" for it in items if it.kind == "photo")
    return {"by_split": dict(by_split), "detail": dict(sorted(detail.items())), "by_class": dict(sorted(by_class.items()))}


def load_dataset_file(path: Path) -> list[Item]:
    """Read the items of a dataset file."""
    import json

    if not Path(path).is_file():
        raise FileNotFoundError(f"dataset file not found: {path} (build it with `python -m training train`)")
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return [Item(**d) for d in doc["items"]]


def select(items: list[Item], split: str, classes: tuple[str, ...], unclassed_fg: bool = False) -> list[Item]:
    """Items of one split the model can learn from: classed ones, plus unclassed ones if `other` is a class or (train
    split only) `unclassed_fg` is set. Negatives (no product) are train items only: validation and test score them
    apart (evaluate.false_positive_rate), so the IoU numbers stay comparable with 1.x."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    keep_unclassed = OTHER in classes or (unclassed_fg and split == "train")
    return [it for it in items if it.split == split and (
        (it.kind == "negative" and split == "train")
        or (it.kind != "negative" and (it.klass is not None or keep_unclassed)))]


def mask_lookup(classes: tuple[str, ...], keep_unclassed: bool = False) -> list[int]:
    """Mask value -> training class id: identity for class ids, 255 (unclassed) -> `other` if it is a class, else 255
    kept with `keep_unclassed` (partial label), else 0."""
    table = list(range(256))
    if OTHER in classes:
        table[UNCLASSED] = classes.index(OTHER)
    elif not keep_unclassed:
        table[UNCLASSED] = 0
    return table


def _load(image_path, mask_path, alpha_path, size: int, lookup):
    """Decode one example and resize it: image and alpha bilinear, mask NEAREST (class ids stay integers)."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
    # Bilinear sampled at pixel centres, no antialiasing: the sharper input scored better on validation than a
    # smoothed (antialiased) one, with the model trained either way (README); the web app resizes the same way
    # (core.images.model_resize).
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), method="bilinear")
    mask = tf.io.decode_png(tf.io.read_file(mask_path), channels=1)
    mask = tf.image.resize(mask, (size, size), method="nearest")
    mask = tf.gather(lookup, tf.cast(mask, tf.int32))
    alpha = tf.io.decode_png(tf.io.read_file(alpha_path), channels=1)
    alpha = tf.image.resize(tf.cast(alpha, tf.float32) / 255.0, (size, size), method="bilinear")
    return tf.clip_by_value(image, 0.0, 255.0), tf.cast(mask, tf.uint8), alpha


def recolourable(item: Item) -> bool:
    """Whether augmentation may swap the photo's background for a colour through the teacher's alpha: studio shots
    on white only. A room photo's background is the room (the context the model must learn), a negative has no
    product, a composite already has its backdrop."""
    return item.kind == "photo" and item.background in (None, "white")


def augment(image, mask, alpha, cfg: PipelineConfig, studio=None):
    """Train-only augmentation: horizontal flip, scale + random crop/pad, background colour change using the
    teacher's alpha (`studio` photos only; otherwise only the padding takes the colour), colour jitter. Geometry is
    applied identically to image, mask and alpha."""
    import tensorflow as tf

    studio = tf.constant(1.0) if studio is None else tf.cast(studio, tf.float32)

    size = cfg.input_size
    if tf.random.uniform(()) < 0.5:
        image, mask, alpha = (tf.image.flip_left_right(t) for t in (image, mask, alpha))
    scale = tf.random.uniform((), *cfg.scale_range)
    new = tf.cast(tf.round(scale * size), tf.int32)
    image = tf.image.resize(image, (new, new), method="bilinear")
    alpha = tf.image.resize(alpha, (new, new), method="bilinear")
    mask = tf.image.resize(mask, (new, new), method="nearest")
    # Zoomed out: pad at a random offset (the pad becomes background); zoomed in: random crop.
    target = tf.maximum(new, size)
    oy = tf.random.uniform((), 0, target - new + 1, dtype=tf.int32)
    ox = tf.random.uniform((), 0, target - new + 1, dtype=tf.int32)
    valid = tf.ones_like(alpha)  # 1 on the photo, 0 on the padding
    stack = tf.concat([image, alpha, tf.cast(mask, tf.float32), valid], axis=-1)
    stack = tf.image.pad_to_bounding_box(stack, oy, ox, target, target)
    stack = tf.image.random_crop(stack, (size, size, 6))
    image, alpha, mask = stack[..., :3], stack[..., 3:4], tf.cast(tf.round(stack[..., 4:5]), tf.uint8)
    valid = stack[..., 5:6]
    # Background: white (like the studio photos, also fills the padding) or a random colour.
    white = tf.random.uniform(()) >= cfg.background_p
    colour = tf.where(white, tf.fill((3,), 255.0), tf.random.uniform((3,), 0.0, 255.0))
    keep = studio * alpha + (1.0 - studio) * valid  # what stays of the photo: the product, or all but the padding
    image = keep * image + (1.0 - keep) * colour
    if cfg.jitter > 0:
        x = image / 255.0
        x = tf.image.random_brightness(x, cfg.jitter)
        x = tf.image.random_contrast(x, 1 - cfg.jitter, 1 + cfg.jitter)
        x = tf.image.random_saturation(x, 1 - cfg.jitter, 1 + cfg.jitter)
        x = tf.image.random_hue(x, cfg.jitter / 5)
        image = x * 255.0
    return tf.clip_by_value(image, 0.0, 255.0), mask, alpha


def get_dataset(items: list[Item], split: str, classes: tuple[str, ...], cfg: PipelineConfig,
                repeat_classed: int = 1, shuffle: bool | None = None, unclassed_fg: bool = False,
                with_alpha: bool = False):
    """tf.data pipeline of (image float32 0..255 NHWC, mask uint8 N×H×W×1) batches for one split.

    Augmentation and shuffling happen on the train split only; `repeat_classed` repeats classed train products
    (they are ~10% of the photos) so each epoch sees them several times. `unclassed_fg` adds the unclassed products
    to the train split with their foreground left at 255 (val/test stay classed-only, so scores stay comparable).
    `with_alpha` makes the target float32 N×H×W×2: the class ids and the teacher's soft alpha, aligned through the
    augmentation (for losses.make_loss's soft term).
    """
    import tensorflow as tf

    chosen = select(items, split, classes, unclassed_fg)
    if not chosen:
        raise ValueError(f"no labelled items in split {split!r}")
    training = split == "train"
    table = mask_lookup(classes, keep_unclassed=unclassed_fg and training)
    lookup = tf.constant(table, tf.int32)
    paths = tuple(list(col) for col in zip(*[(it.image, it.mask, it.alpha) for it in chosen]))
    studio = tf.constant([float(recolourable(it)) for it in chosen], tf.float32)
    ds = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(paths), tf.data.Dataset.from_tensor_slices(studio)))
    ds = ds.map(lambda p, s: (*_load(*p, cfg.input_size, lookup), s), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    if cfg.cache_dir is not None:
        # What 255 maps to is part of the key: `other` and `unclassed_fg` runs cache the same photos differently.
        key = hashlib.sha256(("|".join(it.id for it in chosen) + f"#{table[UNCLASSED]}").encode()).hexdigest()[:12]
        Path(cfg.cache_dir).mkdir(parents=True, exist_ok=True)
        ds = ds.cache(str(Path(cfg.cache_dir) / f"{split}_{cfg.input_size}_{key}"))
    else:
        ds = ds.cache()
    if training and repeat_classed > 1:
        # Classed product photos only: composites are already plentiful, negatives have no class.
        weights = tf.constant([repeat_classed if it.klass is not None and it.kind == "photo" else 1 for it in chosen],
                              tf.int64)
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(weights)))
        ds = ds.flat_map(lambda ex, n: tf.data.Dataset.from_tensors(ex).repeat(n))
    if shuffle if shuffle is not None else training:
        ds = ds.shuffle(len(chosen) * max(1, repeat_classed), seed=cfg.seed, reshuffle_each_iteration=True)
    if training:
        ds = ds.map(lambda i, m, a, s: (*augment(i, m, a, cfg, s), s), num_parallel_calls=tf.data.AUTOTUNE)
    if with_alpha:
        ds = ds.map(lambda i, m, a, s: (i, tf.concat([tf.cast(m, tf.float32), a], axis=-1)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda i, m, a, s: (i, m), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)
