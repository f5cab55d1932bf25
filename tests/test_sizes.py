"""Product sizes from shop text (core.manifest.parse_product_size) and the demo catalogue's names and sizes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.manifest import parse_product_size

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"


@pytest.mark.parametrize("text, category, expected", [
    ("160x80x73 cm", "2-seat sofa, outdoor", {"width_cm": 160, "depth_cm": 80, "height_cm": 73}),
    ("90x200 cm", "Bunk bed frame", {"width_cm": 90, "depth_cm": 200}),
    ("20 cm", "Vase", {"height_cm": 20}),
    ("17 cm", "Plant pot", {"diameter_cm": 17}),
    ("18 cm", "Serving bowl", {"diameter_cm": 18}),
    ("Ø20 cm", "Vase", {"diameter_cm": 20}),
    ("30 cl", "Whiskey glass", {}),   # a volume, not a size
    ("0,5 l", "Jug", {}),
    ("48 cl", "Red wine glass", {}),
    ("80 cm", "Wall shelf", {}),     # a lone size of a type we cannot read it for: no guess
    (None, "Chair", {}),
])
def test_parse_product_size(text, category, expected):
    dims = parse_product_size(text, category)
    got = {k: v for k, v in vars(dims).items() if k != "text" and v is not None}
    assert got == pytest.approx(expected)
    assert dims.text == text


def test_demo_names_have_their_letters_back_and_sizes_are_parsed():
    records = [json.loads(line) for line in (DEMO / "catalogue.jsonl").read_text(encoding="utf-8").splitlines()]
    titles = {r["id"]: r["title"] for r in records}
    assert titles["101.168.49"].startswith("BÖRJE ")
    assert titles["890.203.25"].startswith("ÄPPLARÖ/HÅLLÖ ")
    assert titles["690.203.31"].startswith("KUNGSHOLMEN/KUNGSÖ ")  # was cut short at "KUNGS"
    mangled = {"BRJE", "PPLAR", "PPLAR,HLL", "LILLHJDEN", "SVRTA", "Grsbo", "KUNGSHOLMEN,KUNGS"}
    assert not [t for t in titles.values() if mangled & set(t.replace("/", " ").split(" "))]
    for r in records:
        dims = r["dimensions"]
        if dims["text"] and dims["text"].endswith("cl"):
            assert not any(dims[k] for k in ("width_cm", "depth_cm", "height_cm", "diameter_cm"))
    assert "Tautkute" in (DEMO / "README.md").read_text(encoding="utf-8")
