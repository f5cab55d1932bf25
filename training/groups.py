"""Near-duplicate groups by perceptual hash: the same photo resized, recompressed or lightly cropped lands in one
group, so a split by group never puts one copy in train and another in test."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import imagehash
import numpy as np
from tqdm import tqdm

from .io import atomic_write_json, open_upright

log = logging.getLogger(__name__)

# Two 64-bit hashes must both agree within MAX_DISTANCE bits: pHash (DCT) and dHash (gradients). Either alone
# chains white studio shots of different products into groups of hundreds (on the 5,029 ikea + extra photos pHash
# ≤ 8 made a group of 579 photos; pHash and dHash ≤ 8 one of 187); both ≤ 4 leave groups of at most 19 photos that
# are resized or recoloured copies of one shot.
MAX_DISTANCE = 4
PhotoHash = tuple[int, int]


def photo_hash(path: str | Path) -> PhotoHash:
    """(pHash, dHash) of a photo, upright as labelling saw it."""
    image = open_upright(path)
    return int(str(imagehash.phash(image)), 16), int(str(imagehash.dhash(image)), 16)


def hash_photos(photos: dict[str, tuple[str, Path]], cache: Path | None = None) -> dict[str, PhotoHash]:
    """(pHash, dHash) of each photo {id: (sha256, path)}; with `cache` (JSON {sha256: "phash:dhash" hex}) a photo file
    is hashed once."""
    known: dict[str, str] = {}
    if cache is not None and Path(cache).is_file():
        known = json.loads(Path(cache).read_text(encoding="utf-8"))
    out: dict[str, PhotoHash] = {}
    fresh = 0
    for pid, (sha, path) in tqdm(sorted(photos.items()), desc="phash", unit="img"):
        if ":" in known.get(sha, ""):
            p, d = known[sha].split(":")
            out[pid] = int(p, 16), int(d, 16)
            continue
        out[pid] = photo_hash(path)
        if len(sha) == 64 and sha != "0" * 64:  # a real content hash (tests use placeholders): safe to reuse
            known[sha] = f"{out[pid][0]:016x}:{out[pid][1]:016x}"
            fresh += 1
    if cache is not None and fresh:
        atomic_write_json(cache, known)
    return out


def near_duplicate_groups(hashes: dict[str, PhotoHash], max_distance: int = MAX_DISTANCE) -> dict[str, str]:
    """{id: group key}: ids joined when both their hashes differ in at most `max_distance` bits (transitively); the
    key is the group's smallest id, so it does not depend on the order the photos came in."""
    ids = sorted(hashes)
    if not ids:
        return {}
    ph = np.array([hashes[i][0] for i in ids], dtype=np.uint64)
    dh = np.array([hashes[i][1] for i in ids], dtype=np.uint64)
    parent = np.arange(len(ids))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(ids) - 1):  # one row of the upper triangle at a time: memory stays O(n)
        close = (np.bitwise_count(ph[i + 1:] ^ ph[i]) <= max_distance) & \
            (np.bitwise_count(dh[i + 1:] ^ dh[i]) <= max_distance)
        near = np.flatnonzero(close) + i + 1
        for j in near:
            a, b = find(i), find(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)  # the root is always the smallest index, i.e. the smallest id
    return {pid: ids[find(k)] for k, pid in enumerate(ids)}
