"""Offline data generation for model 2.0: studio products composited into rooms and onto backdrops, and "no product"
negatives. Both write images/, masks/, alpha/ and an items file (the dataset file's format) that
`python -m training dataset --generated …` adds to the dataset. Deterministic given the seed; generated offline so
they can be looked at (sample sheets) and cost nothing at train time.

Composites: a train-split studio product (white background, teacher alpha) pasted into a train room photo or onto a
textured / coloured backdrop, at a plausible scale with its base on the lower part of the frame (the floor, a
table), a soft contact shadow, and a partial colour match to the backdrop, so the model learns products in context,
not "the non-white pixels". Negatives: noise, blank, gradients, textures, walls (upper crops of room photos), text on
plain backgrounds and whole room photos (no single main product): class 0 everywhere.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from tqdm import tqdm

from .dataset import Item
from .io import atomic_save_png, atomic_write_bytes, atomic_write_json, open_upright

log = logging.getLogger(__name__)

SMALL_CLASSES = ("vase", "bowl", "cup", "wine-glass", "potted-plant")  # table-top items: pasted smaller
NEGATIVE_KINDS = ("noise", "blank", "gradient", "texture", "wall", "text", "room")
ROOM_FRACTIONS = (0.7, 0.1, 0.2)  # room photos: train (composites, train negatives) / val / test negatives


@dataclass
class CompositeConfig:
    """How composites are made."""

    out: Path
    count: int = 2000
    seed: int = 0
    long_side: int = 480  # output photos' long side (the model sees 160×160)
    room_p: float = 0.6  # into a room photo; otherwise onto a generated backdrop
    scale: tuple[float, float] = (0.45, 0.85)  # furniture height as a share of the frame height
    small_scale: tuple[float, float] = (0.2, 0.45)  # table-top items
    base: tuple[float, float] = (0.75, 0.98)  # where the product's base lands (share of the frame height)
    shadow: tuple[float, float] = (0.25, 0.55)  # contact shadow opacity
    colour_match: tuple[float, float] = (0.0, 0.5)  # how far the product's colour moves towards the backdrop's


@dataclass
class NegativeConfig:
    """How many no-product images of each kind per split."""

    out: Path
    per_kind: dict[str, int] | None = None  # train count per kind; val gets 1/4, test 1/2 of it
    seed: int = 1
    long_side: int = 480


def stable_unit(key: str) -> float:
    """A number in [0, 1) from a string (independent of Python's hash seed)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) / 0x100000000


def room_split(name: str) -> str:
    """The split of a room photo, by its file name's hash."""
    u = stable_unit("room:" + name)
    return "train" if u < ROOM_FRACTIONS[0] else ("val" if u < ROOM_FRACTIONS[0] + ROOM_FRACTIONS[1] else "test")


def list_rooms(rooms_dir: Path) -> dict[str, list[Path]]:
    """Room photos by split."""
    out: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for path in sorted(Path(rooms_dir).glob("*.jpg")):
        out[room_split(path.name)].append(path)
    if not any(out.values()):
        raise FileNotFoundError(f"no room photos (*.jpg) in {rooms_dir}")
    return out


def fit_long_side(image: Image.Image, long_side: int) -> Image.Image:
    """The image scaled so its long side is `long_side`."""
    scale = long_side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)


def backdrop(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A generated backdrop (float32 H×W×3, 0..255) and its kind: a plain colour, a two-tone wall/floor, or a
    texture (smooth noise, stripes) tinted with a random colour."""
    w, h = size
    colour = rng.uniform(30, 235, 3)
    kind = rng.choice(["plain", "wall-floor", "texture"])
    if kind == "plain":
        img = np.broadcast_to(colour, (h, w, 3)).copy()
        img += np.linspace(-20, 20, h)[:, None, None] * rng.uniform(-1, 1)  # a soft light falloff
    elif kind == "wall-floor":
        horizon = int(h * rng.uniform(0.45, 0.75))
        floor = rng.uniform(30, 200, 3)
        img = np.empty((h, w, 3))
        img[:horizon] = colour
        img[horizon:] = floor
    else:
        small = rng.uniform(-1, 1, (rng.integers(3, 24), rng.integers(3, 24), 1))
        noise = np.asarray(Image.fromarray(((small[..., 0] + 1) * 127.5).astype(np.uint8)).resize((w, h),
                                                                                                  Image.BICUBIC))
        img = colour + (noise[..., None].astype(np.float32) - 127.5) * rng.uniform(0.1, 0.5)
        if rng.uniform() < 0.5:  # stripes or planks
            period = rng.uniform(8, 60)
            axis = np.arange(w if rng.uniform() < 0.5 else h)
            stripes = 18 * np.sin(axis / period * 2 * np.pi)
            img += stripes[None, :, None] if len(axis) == w else stripes[:, None, None]
    img += rng.normal(0, rng.uniform(0, 6), img.shape)  # sensor noise
    return np.clip(img, 0, 255).astype(np.float32), f"backdrop-{kind}"


def cut_out(item: Item) -> tuple[Image.Image, Image.Image, Image.Image]:
    """The product's photo, alpha and mask cropped to its foreground box."""
    photo = open_upright(item.image)
    alpha = Image.open(item.alpha).convert("L")
    mask = Image.open(item.mask).convert("L")
    box = mask.point(lambda v: 255 if v else 0).getbbox()
    if box is None:
        raise ValueError(f"{item.id}: empty mask")
    return photo.crop(box), alpha.crop(box), mask.crop(box)


def contact_shadow(size: tuple[int, int], x0: int, x1: int, base_y: int, rng: np.random.Generator) -> np.ndarray:
    """A soft elliptical shadow under a product whose base spans x0..x1 at base_y (float H×W, 0..1)."""
    w, h = size
    shadow = Image.new("L", size, 0)
    width = x1 - x0
    half_h = max(2, int(width * rng.uniform(0.04, 0.1)))
    ImageDraw.Draw(shadow).ellipse((x0 - width * 0.05, base_y - half_h, x1 + width * 0.05, base_y + half_h), fill=255)
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(1.5, half_h * 0.8)))
    return np.asarray(shadow, np.float32) / 255.0


def composite_one(item: Item, background: np.ndarray, rng: np.random.Generator,
                  cfg: CompositeConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste one product into a backdrop: returns the photo (uint8), mask (class ids / 255) and alpha (uint8)."""
    photo, alpha, mask = cut_out(item)
    h, w = background.shape[:2]
    lo, hi = cfg.small_scale if item.klass in SMALL_CLASSES else cfg.scale
    target_h = rng.uniform(lo, hi) * h
    scale = min(target_h / photo.height, 0.9 * w / photo.width)
    size = (max(2, round(photo.width * scale)), max(2, round(photo.height * scale)))
    photo, alpha = photo.resize(size, Image.BILINEAR), alpha.resize(size, Image.BILINEAR)
    mask = mask.resize(size, Image.NEAREST)
    base_y = int(min(h, max(size[1], rng.uniform(*cfg.base) * h)))
    x0 = int(rng.uniform(0, w - size[0] + 1))
    y0 = base_y - size[1]
    out = background.copy()
    # Contact shadow first: it lies on the floor, under the product.
    out *= 1.0 - rng.uniform(*cfg.shadow) * contact_shadow((w, h), x0, x0 + size[0], base_y, rng)[..., None]
    fg = np.asarray(photo, np.float32)
    a = np.asarray(alpha, np.float32)[..., None] / 255.0
    # Colour match: move the product's mean colour part of the way towards the backdrop's (the room's light).
    k = rng.uniform(*cfg.colour_match)
    weight = a[..., 0] > 0.5
    if weight.any():
        fg_mean = fg[weight].mean(0)
        bg_mean = background.reshape(-1, 3).mean(0)
        gain = (bg_mean + 1.0) / (fg_mean + 1.0)
        fg = fg * (1.0 + k * (np.clip(gain, 0.5, 2.0) - 1.0))
    region = out[y0:y0 + size[1], x0:x0 + size[0]]
    out[y0:y0 + size[1], x0:x0 + size[0]] = a * np.clip(fg, 0, 255) + (1.0 - a) * region
    full_mask = np.zeros((h, w), np.uint8)
    full_alpha = np.zeros((h, w), np.uint8)
    full_mask[y0:y0 + size[1], x0:x0 + size[0]] = np.asarray(mask)
    full_alpha[y0:y0 + size[1], x0:x0 + size[0]] = np.asarray(alpha)
    return np.clip(out, 0, 255).astype(np.uint8), full_mask, full_alpha


def _save(out: Path, pid: str, image: np.ndarray, mask: np.ndarray, alpha: np.ndarray) -> tuple[str, str, str]:
    """Write one generated example (JPEG photo, PNG mask and alpha); returns the absolute paths."""
    import io

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=92)
    paths = (out / "images" / f"{pid}.jpg", out / "masks" / f"{pid}.png", out / "alpha" / f"{pid}.png")
    atomic_write_bytes(paths[0], buf.getvalue())
    atomic_save_png(paths[1], Image.fromarray(mask, "L"))
    atomic_save_png(paths[2], Image.fromarray(alpha, "L"))
    return tuple(str(p.resolve()) for p in paths)


def studio_products(items: list[Item]) -> list[Item]:
    """Train-split studio photos on white (1.x's ikea photos, the extra set's white ones): the products to paste."""
    return [it for it in items if it.split == "train" and it.kind == "photo" and it.background in (None, "white")]


def make_composites(items: list[Item], rooms_dir: Path, cfg: CompositeConfig) -> list[Item]:
    """Generate cfg.count composites from the train studio products and train rooms; writes the items file."""
    products = studio_products(items)
    if not products:
        raise ValueError("no train-split studio products to composite")
    rooms = list_rooms(rooms_dir)["train"]
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(products))
    out_items = []
    for n in tqdm(range(cfg.count), desc="composite", unit="img"):
        item = products[int(order[n % len(products)])]
        if rooms and rng.uniform() < cfg.room_p:
            room = rooms[int(rng.integers(len(rooms)))]
            bg = np.asarray(fit_long_side(open_upright(room), cfg.long_side), np.float32)
            kind = "room"
        else:
            aspect = rng.uniform(0.75, 1.33)
            size = (cfg.long_side, int(cfg.long_side / aspect)) if aspect > 1 else (int(cfg.long_side * aspect),
                                                                                    cfg.long_side)
            bg, kind = backdrop(rng, size)
        image, mask, alpha = composite_one(item, bg, rng, cfg)
        pid = f"comp-{n:05d}"
        paths = _save(cfg.out, pid, image, mask, alpha)
        out_items.append(Item(id=pid, image=paths[0], mask=paths[1], alpha=paths[2], klass=item.klass, split="train",
                              collection="composite", source=f"composite:{item.id}",
                              background="scene" if kind == "room" else "plain", group=item.group or item.id,
                              kind="composite"))
    atomic_write_json(cfg.out / "items.json", {"version": 2, "config": {k: str(v) for k, v in asdict(cfg).items()},
                                              "items": [asdict(it) for it in out_items]})
    log.info("%d composites in %s", len(out_items), cfg.out)
    return out_items


DEFAULT_PER_KIND = {"noise": 60, "blank": 40, "gradient": 60, "texture": 100, "wall": 100, "text": 80, "room": 100}


def negative_image(kind: str, rng: np.random.Generator, rooms: list[Path], long_side: int) -> np.ndarray:
    """One no-product image of a kind (uint8 H×W×3)."""
    aspect = rng.uniform(0.75, 1.33)
    w, h = (long_side, int(long_side / aspect)) if aspect > 1 else (int(long_side * aspect), long_side)
    if kind == "noise":
        img = rng.uniform(0, 255, (h, w, 3)) if rng.uniform() < 0.5 else rng.normal(128, rng.uniform(20, 80), (h, w, 3))
    elif kind == "blank":
        img = np.broadcast_to(rng.choice([rng.uniform(0, 255, 3), np.full(3, 255.0), np.zeros(3)]), (h, w, 3))
    elif kind == "gradient":
        t = np.linspace(0, 1, w)[None, :, None] if rng.uniform() < 0.5 else np.linspace(0, 1, h)[:, None, None]
        img = rng.uniform(0, 255, 3) * (1 - t) + rng.uniform(0, 255, 3) * t
        img = np.broadcast_to(img, (h, w, 3))
    elif kind == "texture":
        img, _ = backdrop(rng, (w, h))
    elif kind in ("wall", "room"):
        if not rooms:
            raise ValueError(f"negative kind {kind!r} needs room photos")
        room = open_upright(rooms[int(rng.integers(len(rooms)))])
        if kind == "wall":  # the upper part of a room photo: wall, windows, shelves, lamps, but no main product
            rw, rh = room.size
            cw = int(rw * rng.uniform(0.3, 0.6))
            ch = int(min(rh * 0.4, cw / aspect))
            x = int(rng.uniform(0, rw - cw + 1))
            room = room.crop((x, 0, x + cw, ch))
        img = np.asarray(fit_long_side(room, long_side), np.float32)
    elif kind == "text":
        bg = rng.uniform(150, 255, 3) if rng.uniform() < 0.7 else rng.uniform(0, 255, 3)
        canvas = Image.new("RGB", (w, h), tuple(int(v) for v in bg))
        draw = ImageDraw.Draw(canvas)
        words = ["SALE", "Free delivery", "New in", "-30%", "Sofa beds", "Order now", "In stock", "RoomFit",
                 "Lorem ipsum dolor", "Made in Sweden", "Price 199.00", "Best seller"]
        for _ in range(int(rng.integers(1, 6))):
            font = ImageFont.load_default(size=int(rng.uniform(14, 64)))
            ink = tuple(int(v) for v in (bg + 128) % 256)
            draw.text((rng.uniform(0, w * 0.6), rng.uniform(0, h * 0.85)), str(rng.choice(words)), fill=ink, font=font)
        img = np.asarray(canvas, np.float32)
    else:
        raise ValueError(f"unknown negative kind {kind!r} (choose from {', '.join(NEGATIVE_KINDS)})")
    return np.clip(img, 0, 255).astype(np.uint8)


def make_negatives(rooms_dir: Path, cfg: NegativeConfig) -> list[Item]:
    """Generate the negative set (train, val and held-out test; rooms kept apart by split); writes the items file."""
    per_kind = cfg.per_kind or DEFAULT_PER_KIND
    rooms = list_rooms(rooms_dir)
    rng = np.random.default_rng(cfg.seed)
    plan = [(split, kind, n) for split, share in (("train", 1.0), ("val", 0.25), ("test", 0.5))
            for kind, count in per_kind.items() for n in range(max(1, round(count * share)))]
    out_items = []
    for split, kind, n in tqdm(plan, desc="negatives", unit="img"):
        image = negative_image(kind, rng, rooms[split], cfg.long_side)
        out_items.append(_negative_item(cfg.out, f"neg-{split}-{kind}-{n:04d}", image, split, kind, None))
    atomic_write_json(cfg.out / "items.json", {"version": 2, "per_kind": per_kind,
                                              "items": [asdict(it) for it in out_items]})
    log.info("%d negatives in %s", len(out_items), cfg.out)
    return out_items


SCENE_CROP_SHARE = {"train": 1.0, "val": 0.2}  # scene-crop negatives per split, as a share of `count`


@dataclass
class SceneNegativeConfig:
    """No-product crops cut out of other shops' room photos beside their (teacher-labelled) product."""

    out: Path
    count: int = 500  # train crops; val gets SCENE_CROP_SHARE["val"] of it (test keeps the fixed kinds above)
    room_views: int = 200  # train only: random crops/flips of whole train room photos (2.0.0 let 15/50 test rooms through)
    seed: int = 2
    long_side: int = 480
    # A crop spans at least this share of the photo's width and height. Shops frame room photos tightly: the
    # product's top edge sits at a median 9% of the height, its nearer side at 8% of the width (300 train scene
    # photos), so 0.3 found a crop in 5% of them and 0.15 in 28%.
    min_side: float = 0.15
    max_fg: float = 0.002  # share of the crop the product's alpha may reach (its soft edge)


def empty_crop(alpha: np.ndarray, rng: np.random.Generator, min_side: float = 0.15,
               max_fg: float = 0.002, tries: int = 4) -> tuple[int, int, int, int] | None:
    """A box (left, top, right, bottom) beside the product, above it or to either side, that holds none of it;
    None when no band around the product is large enough."""
    h, w = alpha.shape
    fg = alpha > 25
    if not fg.any():
        return None
    ys, xs = np.nonzero(fg)
    my, mx = int(0.03 * h), int(0.03 * w)  # keep clear of the product's soft edge
    y0, x0 = max(0, ys.min() - my), max(0, xs.min() - mx)
    x1 = min(w, xs.max() + 1 + mx)
    bands = [(0, 0, w, y0), (0, 0, x0, h), (x1, 0, w, h)]  # above, left, right: wall, windows, side tables
    bands = [b for b in bands if b[2] - b[0] >= min_side * w and b[3] - b[1] >= min_side * h]
    for n in rng.permutation(len(bands)):
        bl, bt, br, bb = bands[n]
        for _ in range(tries):  # a band's corner may hold a stray bit of the product: draw again
            cw = int((br - bl) * rng.uniform(0.7, 1.0))
            ch = int((bb - bt) * rng.uniform(0.7, 1.0))
            cw, ch = min(cw, 2 * ch), min(ch, 2 * cw)  # no strips: aspect between 1:2 and 2:1
            if cw < min_side * w or ch < min_side * h:
                continue
            left = int(rng.integers(bl, br - cw + 1))
            top = int(rng.integers(bt, bb - ch + 1))
            if fg[top:top + ch, left:left + cw].mean() <= max_fg:
                return left, top, left + cw, top + ch
    return None


def make_scene_negatives(items: list[Item], rooms_dir: Path, cfg: SceneNegativeConfig) -> list[Item]:
    """No-product crops of other shops' room photos (train and val by the photo's own split) and varied views of
    whole train room photos; writes the items file. The held-out test negatives stay `make_negatives`' fixed set."""
    rng = np.random.default_rng(cfg.seed)
    scenes = {split: [it for it in items if it.split == split and it.kind == "photo" and it.background == "scene"]
              for split in SCENE_CROP_SHARE}
    out_items: list[Item] = []
    for split, share in SCENE_CROP_SHARE.items():
        wanted, pool = round(cfg.count * share), list(scenes[split])
        rng.shuffle(pool)
        made = 0
        for item in tqdm(pool, desc=f"scene crops ({split})", unit="photo"):
            if made >= wanted:
                break
            alpha = np.asarray(Image.open(item.alpha).convert("L"))
            box = empty_crop(alpha, rng, cfg.min_side, cfg.max_fg)
            if box is None:
                continue
            photo = open_upright(item.image).convert("RGB")
            sx, sy = photo.width / alpha.shape[1], photo.height / alpha.shape[0]  # alpha may be stored smaller
            crop = photo.crop((round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)))
            image = np.asarray(fit_long_side(crop, cfg.long_side))
            pid = f"neg-{split}-scene-crop-{made:04d}"
            out_items.append(_negative_item(cfg.out, pid, image, split, "scene-crop", item.group or item.id))
            made += 1
        if made < wanted:
            log.warning("only %d of %d %s scene crops: too few room photos with space beside the product",
                        made, wanted, split)
    rooms = list_rooms(rooms_dir)["train"]
    for n in tqdm(range(cfg.room_views if rooms else 0), desc="room views", unit="img"):
        room = open_upright(rooms[int(rng.integers(len(rooms)))]).convert("RGB")
        side = rng.uniform(0.6, 1.0)
        cw, ch = int(room.width * side), int(room.height * rng.uniform(0.6, 1.0))
        left, top = int(rng.integers(0, room.width - cw + 1)), int(rng.integers(0, room.height - ch + 1))
        view = room.crop((left, top, left + cw, top + ch))
        if rng.uniform() < 0.5:
            view = view.transpose(Image.FLIP_LEFT_RIGHT)
        image = np.asarray(fit_long_side(view, cfg.long_side))
        out_items.append(_negative_item(cfg.out, f"neg-train-room-view-{n:04d}", image, "train", "room-view", None))
    atomic_write_json(cfg.out / "items.json", {"version": 2, "count": cfg.count, "room_views": cfg.room_views,
                                              "items": [asdict(it) for it in out_items]})
    log.info("%d scene negatives in %s", len(out_items), cfg.out)
    return out_items


def _negative_item(out: Path, pid: str, image: np.ndarray, split: str, source: str, group: str | None) -> Item:
    """Save one no-product image (all-zero mask and alpha) and return its item."""
    zeros = np.zeros(image.shape[:2], np.uint8)
    paths = _save(out, pid, image, zeros, zeros)
    return Item(id=pid, image=paths[0], mask=paths[1], alpha=paths[2], klass=None, split=split,
                collection="negative", source=source, background=None, group=group or pid, kind="negative")


def sample_sheet(items: list[Item], out_png: Path, cell: int = 200, columns: int = 6) -> Path:
    """A grid of generated images with their mask outlined in magenta, for looking at by eye."""
    rows = -(-len(items) // columns)
    sheet = Image.new("RGB", (columns * cell, rows * (cell + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for n, it in enumerate(items):
        photo = Image.open(it.image).convert("RGB")
        mask = Image.open(it.mask).point(lambda v: 255 if v else 0)
        edge = mask.filter(ImageFilter.FIND_EDGES).filter(ImageFilter.MaxFilter(3))
        photo = Image.composite(Image.new("RGB", photo.size, (255, 0, 200)), photo, edge)
        photo.thumbnail((cell, cell))
        x, y = (n % columns) * cell, (n // columns) * (cell + 14)
        sheet.paste(photo, (x, y))
        draw.text((x + 2, y + cell), f"{it.klass or '-'} {it.background or it.source}", fill="black")
    atomic_save_png(out_png, sheet)
    return out_png
