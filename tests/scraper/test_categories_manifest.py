"""The categories mapping, dimension parsing and the manifest contract."""
import json

import pytest

from core.categories import CategoriesError, load_categories
from scraper.import_dataset import ImportConfig, import_dataset
from core.manifest import ManifestRecord, ManifestWriter, parse_dimensions, read_manifest


@pytest.fixture(scope="module")
def cats():
    return load_categories()


@pytest.mark.parametrize("category, expected", [
    ("Three-seat sofa", "couch"),
    ("Two-seat sofa-bed", "couch"),
    ("Bed frame", "bed"),
    ("Loft bed frame", "bed"),
    ("Bedside table", None),
    ("Bedspread", None),
    ("Bed storage box", None),
    ("Chair", "chair"),
    ("Swivel easy chair", "chair"),
    ("Chair pad", None),
    ("Children's table with 2 chairs", None),
    ("Stool", None),
    ("Vase", "vase"),
    ("Vase,bowl, set of 3", "vase"),
    ("Serving bowl", "bowl"),
    ("Inset sink, 1 bowl", None),
    ("Mug", "cup"),
    ("Espresso cup", "cup"),
    ("Glass", "cup"),
    ("Whiskey glass", "cup"),
    ("Basket with suction cup", None),
    ("Wine glass", "wine-glass"),
    ("Red wine glass", "wine-glass"),
    ("Plant pot", "potted-plant"),
    ("Potted plant", "potted-plant"),
    ("Net for plant pot", None),
    ("Wall shelf", None),
    ("", None),
    (None, None),
])
def test_classify(cats, category, expected):
    assert cats.classify(category) == expected


def test_classes_are_configuration(cats):
    assert cats.classes == ("background", "couch", "chair", "bed", "vase", "bowl", "cup", "wine-glass",
                            "potted-plant")


@pytest.mark.parametrize("text, message", [
    ("classes: [couch]\n", "start with 'background'"),
    ("classes: [background, a]\nrules: [{class: b, match: [x]}]\n", "unknown class"),
    ("classes: [background, a]\nrules: [{class: a, match: ['(']}]\n", "bad regex"),
    ("classes: [background\n", "invalid YAML"),
])
def test_bad_categories_files(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(CategoriesError, match=message):
        load_categories(path)


@pytest.mark.parametrize("text, w, d, h, diam", [
    ("90x200 cm", 90, 200, None, None),
    ("W 80 x D 35 x H 120 cm", 80, 35, 120, None),
    ("Ø20 cm", None, None, None, 20),
    ("1.5x2 m", 150, 200, None, None),
    ("80 cm", None, None, None, None),
    ("", None, None, None, None),
])
def test_parse_dimensions(text, w, d, h, diam):
    dims = parse_dimensions(text)
    assert (dims.width_cm, dims.depth_cm, dims.height_cm, dims.diameter_cm) == (w, d, h, diam)


def _record(i: str) -> ManifestRecord:
    return ManifestRecord(id=i, path=f"{i}.jpg", sha256="0" * 64, width=10, height=10, klass="chair")


def test_manifest_round_trip_and_torn_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(path) as w:
        w.append(_record("a"))
        w.append(_record("b"))
    with open(path, "a") as f:
        f.write('{"id": "c", "pa')  # a crash mid-line
    assert [r.id for r in read_manifest(path)] == ["a", "b"]
    with ManifestWriter(path) as w:  # the writer repairs the torn tail before appending
        w.append(_record("d"))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "d"]
    assert json.loads(lines[0])["class"] == "chair"


def test_import_dataset_is_resumable(tmp_path, cats):
    from PIL import Image

    ds = tmp_path / "ds"
    (ds / "products").mkdir(parents=True)
    for name in ("1", "2"):
        Image.new("RGB", (40, 30), "white").save(ds / "products" / f"{name}.jpg")
    (ds / "products" / "3.jpg").write_bytes(b"not an image")
    (ds / "products.csv").write_text(
        "id,file,type,name,color,size,description\n"
        "1,products/1.jpg,Chair,ADDE,White,,\n"
        "2,products/2.jpg,Wall shelf,X,,80 cm,\n"
        "3,products/3.jpg,Vase,Y,,,\n"
        "4,products/4.jpg,Vase,Z,,,\n")
    out = tmp_path / "out" / "manifest.jsonl"
    s = import_dataset(ImportConfig(dataset_dir=ds, out=out), cats)
    assert (s.written, s.unreadable, s.missing, s.classed) == (2, 1, 1, 1)
    records = list(read_manifest(out))
    assert [(r.id, r.klass, r.width, r.height) for r in records] == [("1", "chair", 40, 30), ("2", None, 40, 30)]
    assert (out.parent / records[0].path).resolve() == (ds / "products" / "1.jpg").resolve()
    again = import_dataset(ImportConfig(dataset_dir=ds, out=out), cats)
    assert again.written == 0 and again.already == 2
    assert len(out.read_text().splitlines()) == 2


def test_import_dataset_skips_short_rows_and_broken_pngs(tmp_path, cats):
    import io

    from PIL import Image

    ds = tmp_path / "ds"
    (ds / "products").mkdir(parents=True)
    Image.new("RGB", (40, 30), "white").save(ds / "products" / "1.jpg")
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buf, "PNG")
    png = bytearray(buf.getvalue())
    idat = png.index(b"IDAT")
    png[idat + 8] ^= 0xFF  # one flipped byte inside the image data: the chunk's CRC no longer matches
    (ds / "products" / "2.png").write_bytes(bytes(png))
    (ds / "products.csv").write_text("id,file,type\n1,products/1.jpg,Chair\n2,products/2.png,Vase\n7\n")
    s = import_dataset(ImportConfig(dataset_dir=ds, out=tmp_path / "manifest.jsonl"), cats)
    assert (s.written, s.unreadable) == (1, 2)  # the broken PNG and the row with only an id


def test_import_dataset_header_only_and_missing_columns(tmp_path, cats):
    import pytest

    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "products.csv").write_text("id,file,type\n")  # a header and no products: nothing to do, not an error
    assert import_dataset(ImportConfig(dataset_dir=ds, out=tmp_path / "m.jsonl"), cats).written == 0
    (ds / "products.csv").write_text("id,image\n1,a.jpg\n")
    with pytest.raises(ValueError, match=r"missing columns \['file', 'type'\]"):
        import_dataset(ImportConfig(dataset_dir=ds, out=tmp_path / "m.jsonl"), cats)


def test_import_dataset_class_column_overrides_the_type(tmp_path, cats):
    import pytest
    from PIL import Image

    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    for name in ("1", "2", "3"):
        Image.new("RGB", (20, 20), "white").save(ds / "images" / f"{name}.jpg")
    # ../shared/data/extra: handika's "sofa" folder is class couch; saiwho "dinnerware" has no class (bowls + plates).
    (ds / "products.csv").write_text("id,file,type,class\n1,images/1.jpg,sofa,couch\n2,images/2.jpg,dinnerware,\n"
                                     "3,images/3.jpg,Chair,\n")
    s = import_dataset(ImportConfig(dataset_dir=ds, out=tmp_path / "m.jsonl", source="extra"), cats)
    assert s.written == 3
    assert [(r.id, r.klass) for r in read_manifest(tmp_path / "m.jsonl")] == [
        ("1", "couch"), ("2", None), ("3", "chair")]
    (ds / "products.csv").write_text("id,file,type,class\n1,images/1.jpg,sofa,table\n")
    with pytest.raises(ValueError, match="unknown class 'table'"):
        import_dataset(ImportConfig(dataset_dir=ds, out=tmp_path / "m2.jsonl"), cats)
