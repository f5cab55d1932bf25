"""How tests/scraper/pages_expected.json was written: a by-eye judgement per page (a regex whose group names each
picture, written after reading the page markup), stored with the page as its `rule`; the page's expected pictures are
the names the rule gives to image URLs in the page's markup or among every picture candidate the extractor saw,
kept or dropped (its debug log lists each candidate's URLs), so they do not depend on how picture keys are computed.
Run by hand (.venv/bin/python benchmarks/annotate_pages.py) after adding or correcting a rule; not run by tests."""
import csv
import gzip
import html as htmllib
import json
import logging
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from core.extract import _IMAGE_URL, extract_product  # noqa: E402

PAGES = REPO.parent / "shared" / "data" / "pages"
Z = lambda *ids: r"spp-media-p1/(" + "|".join(ids) + ")/"
RULES = {
 "040c3ea5": (r"otto/(e72f372d|fa6654df)", "main + 1 gallery; the SEO-named URL is the same picture as the bare id"),
 "04ba1449": (r"(ecc60912110_)\.png", "one picture, two resize paths"),
 "08b51541": (r"get-mpic/(1567763|931379|1360806|1045304)/", "4 gallery pictures; /orig,/1hq,/3hq renditions"),
 "09b6ff55": (r"product/(f_b2f4fb4ec8bfb7456f9dfdad54bee5df)", "og picture only; c_* tiles are other deals"),
 "0d1c8923": (r"files/(hkvrcyj7vklz)-PK", "one photo; other apollo ids link to other ads"),
 "0eeed974": (r"rx-il1b03fWn/(usha-bloom-promise-1)", "one picture in 4 sizes"),
 "137b2fe5": (r"(bst-ibizaled8mini-\d|social/66868)", "4 gallery pictures + the social share picture"),
 "15944e4f": (r"(ab01gra|ab12avd)-caran", "2 pictures, each in pdfds/pdhds/pdhdr/pdthr renditions; disruptor badges excluded"),
 "16606e09": (r"/(9789724084985)_", "book cover"),
 "16962698": (r"bralna-ocala/(hydrotac(?:-on-glasses|-howto)?)\.jpg", "3 gallery pictures"),
 "1a9172cf": (r"3410048_\d+_([A-F])\.jpg", "6 views A-F, sizes 40..1200"),
 "21e72a8e": (r"images/g/((?!PcIAAOSwgDxZ0paJ)[^/]+)/s\.jpg", "main + 9 gallery thumbnails (alt = title); the png is not a photo"),
 "2342b61d": (r"qimage\.de/t?(229739487)\.jpg", "one photo and its t-thumbnail"),
 "24d6d89f": (r"product/(f_9906499b3b4c1e681ccf78dd15916ae5)", "og picture only"),
 "25910052": (r"Argos/(4667999_R_Z\d{3}A)", "8 gallery pictures; _R_SET is an image set, videos excluded"),
 "2b9b4648": (r"/3/(1045573)\.jpg", "one picture in img-125..img-large renditions"),
 "2c08ee46": (r"55217W/v1/(\d)-", "5 pictures in zoom/cart/catalog renditions"),
 "2c42fb60": (r"12222/(12222651(?:_\d)?)\.jpg", "9 pictures; YouTube thumbnail excluded"),
 "2dfce31e": (r"/(11113970)\.jpg", "book cover, two sizes"),
 "2fa16d14": (r"29820325/images/(res_\w+)\.jpg", "product directory pictures"),
 "3126dc68": (r"(93133869_\d+)_x", "lot photos"),
 "3ae14333": (r"ve900_1_(?:frf|vr)(\d)|ve900_1_fr(m)", "6 views (frf large, vr thumbnail) + frm"),
 "3d3ee8eb": (r"images\.craigslist\.org/(\w{5}_\w{11}_\w{6})", "4 photos with 50x50c thumbnails"),
 "412fe668": (r"~prod/(M67296549)_big", "one picture (two cache-busting P= values)"),
 "42b022ac": (r"aikido/store/(27651426b736a82b8741694b685b68dc|7e9adb5c1293e1c4c499744ede664568|107dfb30bafef6dc336d5f07a7b1ad58)", "3 gallery pictures named by JSON-LD; other store hashes are recommendations"),
 "442c155e": (r"Argos/(9249556_R_Z\d{3}A)", "6 gallery pictures"),
 "453f5cc0": (r"112949990/(\d+)\.jpg", "pictures in the product's id directory"),
 "4595f2ae": (r"18219259/images/(res_\w+)\.jpg", "product directory pictures"),
 "469894a5": (r"Products/(?:\w+/)+(144432(?:_\d)?)\.jpg", "3 pictures (main + Add/_1, _2: itemprop=image thumbnails and the lightbox list) in size folders"),
 "4b3a1705": (r"image/\d+/(2140441|2140661|2301860|2301861|2301862)/product/", "5 gallery pictures, ,mini/,large renditions"),
 "4f4a8f8d": (Z("ae68543926713ddeabb6439569604fb3", "bd7151181b9036bc9c3b832558739ea0", "d29cebbdf4a134d6a12872647ea6d459",
                "8d355b7cdd7935af8927f6e26db952bc", "656e3a1957943068b84ca54b81bf82d0", "9c7a2e13078732d8a44f561f6f1b4af7"),
              "6 gallery pictures named by JSON-LD; other spp-media ids in the state blob are other articles"),
 "52ea2c66": (r"/(1002710040_\d+_\d+_1)\.jpg", "colour 040 views; /w/NNN/ renditions"),
 "5579758b": (r"usedphotosna/(9326168[5-8]|93261690)_", "5 ad photos, _614/_934 renditions"),
 "572368ce": (r"987929/(i6d9472dc4)\.jpg", "one picture"),
 "5c1ec210": (r"/(3697272808_\d+_\d+_1)\.jpg", "colour 808 views"),
 "5d84948a": (r"import_files/1b/(1bedd45[789ab]-3da5)", "5 gallery pictures"),
 "75cde739": (r"/(15147475)\.jpg", "book cover, two sizes"),
 "7a082dd9": (r"10134622/\w_(10134622(?:_\d{3})?)\.jpg", "5 pictures in l_/m_/s_/t_/u_ renditions"),
 "7a838a16": (r"image/\d+/(2078605|2242968|2242969|2242970|2223712|2239201)/product/", "6 gallery pictures"),
 "7c4d432c": (Z("3e96066379763352af13ac5fdf8679f4", "83edfa0831403e609abdecfb22e9a284", "13c81807433e3aee958797030116b2a0",
                "bbfc3077cf9b3eaeac6ba4de293919d8", "12eb2718fb9b3f7a9740847bae8b8ffc", "a4e539a180d83bc8a55c64eda276fc24"),
              "6 gallery pictures"),
 "7c789e68": (r"/(1044320600_\d+_\d+_1)\.jpg", "colour 600 views; 1044320800 is another colour's swatch"),
 "86366653": (r"product_pics/(?:middle/)?(1_1304508|2_1304509_1304509)", "2 pictures named by microdata"),
 "89d10150": (r"(monnalisa_175004_5066(?:_\d)?)\.png", "3 pictures"),
 "91f0a111": (r"/(9780552173742)_", "book cover"),
 "91f8f14d": (r"~prod/(M14876706_big|M14876706/_sE_\d+)", "main + detail picture"),
 "93e7744d": (r"14551/(14551914(?:_\d)?)\.jpg", "8 pictures"),
 "98a7d9c6": (r"/(0210088999_\d+_\d+_1)\.jpg", "4 views"),
 "98c23afb": (r"qimage\.de/01/t?(206017954)\.jpg", "one photo"),
 "997de723": (Z("0ebf6b1196e1376299f0e8416a57a669", "717295bf622e3d5aa4a7c60b9e44133f", "cdc9ce8853bf3a208a4a956d3c967fe6",
                "cf1a06bc30b3341ca30d0094600ad837", "4efae43e26273b818ee23ecdcf21a459"), "5 gallery pictures"),
 "9d8d7e05": (Z("403c915e490f31b381a9934d3c6b6c94", "c498a9c621fe3a91add0f5d938bd2017", "1c009bcd19e73e849c229b96536db2a9"),
              "3 gallery pictures"),
 "9d939d48": (r"(94037710_\d+)_x", "lot photos"),
 "9df72c4e": (r"10206131/\w_(10206131(?:_\d{3})?)\.jpg", "6 pictures in renditions; 10206130 is another model"),
}


class _Candidates(logging.Handler):
    """Collects the extractor's debug lines about picture candidates."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("picture"):
            self.lines.append(record.getMessage())


def main() -> None:
    """Write pages_expected.json from RULES and the corpus."""
    handler = _Candidates()
    logger = logging.getLogger("core.extract")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    out = {}
    for r in csv.DictReader(open(PAGES / "pages.csv", encoding="utf-8")):
        sha = Path(r["file"]).name.removesuffix(".html.gz")
        rule = RULES.get(sha[:8])
        if not rule:
            continue
        text = gzip.open(PAGES / r["file"]).read().decode("utf-8", "replace")
        handler.lines.clear()
        extract_product(text, r["original_url"])
        urls = [u for line in handler.lines for u in line.split()]
        text = htmllib.unescape(text.replace("\\/", "/").replace("\\u002F", "/"))
        names = set()
        for url in [m.group(0) for m in _IMAGE_URL.finditer(text)] + urls:
            hit = re.search(rule[0], url)
            if hit:
                names.add(next(g for g in hit.groups() if g))
        out[sha] = {"url": r["original_url"], "note": rule[1], "rule": rule[0], "pictures": sorted(names)}
        print(sha[:8], len(names))
    (REPO / "tests" / "scraper" / "pages_expected.json").write_text(
        json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(len(out), "pages")


if __name__ == "__main__":
    main()
