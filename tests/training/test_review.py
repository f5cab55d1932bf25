"""Automatic label review: each check on hand-made masks, and the review command's files."""
import json

import numpy as np
from PIL import Image

from training.review import ReviewConfig, failed_checks, longest_run, mask_stats, rejected_ids, review_labels


def test_longest_run():
    assert longest_run(np.array([0, 1, 1, 0, 1, 1, 1, 0], bool)) == 3
    assert longest_run(np.zeros(5, bool)) == 0
    assert longest_run(np.ones(4, bool)) == 4


def _alpha(mask):
    return (mask > 0).astype(np.float32)


def test_checks_on_hand_made_masks():
    cfg = ReviewConfig()
    good = np.zeros((100, 100), np.uint8)
    good[30:80, 20:70] = 3
    assert failed_checks(mask_stats(good, _alpha(good), cfg), cfg) == []

    wall = good.copy()
    wall[0:30, 10:60] = 3  # a 50% run along the top edge, joined to the product
    s = mask_stats(wall, _alpha(wall), cfg)
    assert s.top_run == 0.5 and failed_checks(s, cfg) == ["touches-top"]

    split = good.copy()
    split[40:70, 80:95] = 3  # a second part of 450 px (4.5% of the photo, 18% of the first)
    assert mask_stats(split, _alpha(split), cfg).parts == 1  # under part_ratio 0.25 of the largest: a speck
    split[30:80, 75:100] = 3  # now 1,250 px, half the first
    assert failed_checks(mask_stats(split, _alpha(split), cfg), cfg) == ["split"]

    tiny = np.zeros((100, 100), np.uint8)
    tiny[10:15, 10:15] = 1
    assert "tiny-fg" in failed_checks(mask_stats(tiny, _alpha(tiny), cfg), cfg)

    soft = _alpha(good)
    soft[30:55, 20:70] = 0.5  # half the foreground uncertain
    s = mask_stats(good, soft, cfg)
    assert abs(s.soft_share - 0.5) < 1e-6 and failed_checks(s, cfg) == ["uncertain-alpha"]


def test_review_command_writes_verdicts_sheets_and_honours_manual(tiny_data, tmp_path):
    manifest, labels = tiny_data
    # p03: a second large part; p04: rejected by labelling already
    mask = np.asarray(Image.open(labels / "masks" / "p03.png")).copy()
    mask[30:46, 36:47] = 1
    Image.fromarray(mask).save(labels / "masks" / "p03.png")
    lines = [json.loads(x) for x in (labels / "labels.jsonl").read_text().splitlines()]
    lines[4].update(status="rejected", reason="empty-mask")
    (labels / "labels.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    manual = tmp_path / "manual.jsonl"
    manual.write_text(json.dumps({"id": "p05", "status": "rejected", "reason": "headboard missing"}) + "\n")
    out = tmp_path / "review"
    counts = review_labels(manifest, labels, out, ReviewConfig(part_min=0.02), manual=manual)
    verdicts = {json.loads(x)["id"]: json.loads(x) for x in (out / "review.jsonl").read_text().splitlines()}
    assert verdicts["p03"]["reason"] == "split" and verdicts["p03"]["status"] == "rejected"
    assert verdicts["p04"]["reason"] == "label:empty-mask"
    assert verdicts["p05"] == verdicts["p05"] | {"status": "rejected", "reason": "headboard missing", "by": "manual"}
    assert counts["ok"] == 22 and (out / "sheet_split.png").is_file() and (out / "sheet_ok.png").is_file()
    assert rejected_ids(out / "review.jsonl") == {"p03", "p04", "p05"}


def test_review_sheets_show_reference_cutouts_numbered(tmp_path):
    from training.dataset import Item
    from training.review import SheetConfig, review_sheets

    items = []
    for n, (split, background) in enumerate([("test", "white"), ("val", "white"), ("test", "scene"), ("train", "white")]):
        photo, mask = tmp_path / f"p{n}.png", tmp_path / f"m{n}.png"
        Image.new("RGB", (40, 30), (200, 30, 30)).save(photo)
        m = np.zeros((30, 40), np.uint8)
        m[:, :20] = 255  # the left half is the product (255: unclassed foreground)
        Image.fromarray(m).save(mask)
        items.append(Item(f"x{n}", str(photo), str(mask), str(mask), None, split, collection="extra",
                          background=background))
    cfg = SheetConfig(split=("test", "val"), background=("white",), cell=50, columns=2, rows=1)
    index = review_sheets(items, tmp_path / "sheets", cfg)
    assert [e["id"] for e in index] == ["x0", "x1"] and [e["no"] for e in index] == [0, 1]
    assert json.loads((tmp_path / "sheets" / "index.json").read_text()) == index
    sheet = np.asarray(Image.open(tmp_path / "sheets" / "sheet_00.png").convert("RGB"))
    assert sheet.shape == (64, 200, 3)  # one row of 2 items × (photo, cut-out) at 50 px, plus a caption line
    cut = sheet[5:25, 50:90]  # x0's cut-out (40×30, never enlarged): red product on the left, green where empty
    assert (cut[:, 5] == [200, 30, 30]).all() and (cut[:, 30] == [60, 160, 60]).all()
    negatives = [Item("n0", items[0].image, items[0].mask, items[0].alpha, None, "test", kind="negative")]
    assert [e["id"] for e in review_sheets(negatives, tmp_path / "neg", SheetConfig(kind="negative"))] == ["n0"]
