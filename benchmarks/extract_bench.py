"""Picture extraction on the real saved shop pages (../shared/data/pages) against tests/scraper/pages_expected.json.

Each annotated page has a rule (a regex whose group names a picture, written by eye after reading the page's markup)
and the list of the product's pictures by name. A kept picture belongs to the picture its URL (else one of its
alternates) names under the rule; the annotations therefore do not depend on how picture keys are computed.
Per page and overall: recall (expected pictures found), foreign share (kept pictures the rule names none of the
expected pictures; a second kept entry of one expected picture counts as a duplicate, not as foreign) and parse time.
Run: .venv/bin/python benchmarks/extract_bench.py [--pages DIR]
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.extract import extract_product  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXPECTED = REPO / "tests" / "scraper" / "pages_expected.json"
PAGES = REPO.parent / "shared" / "data" / "pages"


@dataclass
class PageScore:
    """One annotated page's result."""

    sha: str
    expected: int
    found: int
    kept: int
    foreign: int
    duplicates: int
    seconds: float


def picture_name(rule: str, urls: list[str], pictures: list[str]) -> str | None:
    """The annotated picture the first matching URL names under the page's rule (None: not an expected one)."""
    for url in urls:
        m = re.search(rule, url)
        name = next((g for g in m.groups() if g), None) if m else None
        if name in pictures:
            return name
    return None


def score_page(html: str, url: str, rule: str, pictures: list[str], sha: str) -> PageScore:
    """Extract one page and compare its kept pictures with the annotated ones."""
    start = time.perf_counter()
    info = extract_product(html, url)
    seconds = time.perf_counter() - start
    found: set[str] = set()
    foreign = duplicates = 0
    for cand in info.images:
        name = picture_name(rule, [cand.url, *cand.alternates], pictures)
        if name is None:
            foreign += 1
        elif name in found:
            duplicates += 1
        else:
            found.add(name)
    return PageScore(sha, len(pictures), len(found), len(info.images), foreign, duplicates, seconds)


def run(pages_dir: Path = PAGES, expected_path: Path = EXPECTED) -> list[PageScore]:
    """Score every annotated page found in pages_dir."""
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    files = {Path(r["file"]).name.removesuffix(".html.gz"): r["file"]
             for r in csv.DictReader(open(pages_dir / "pages.csv", encoding="utf-8"))}
    out = []
    for sha, entry in expected.items():
        if sha not in files:
            continue
        html = gzip.open(pages_dir / files[sha]).read().decode("utf-8", "replace")
        out.append(score_page(html, entry["url"], entry["rule"], entry["pictures"], sha))
    return out


def totals(scores: list[PageScore]) -> dict[str, float]:
    """Overall recall, foreign share, duplicate share and parse time percentiles."""
    kept = sum(s.kept for s in scores) or 1
    times = sorted(s.seconds for s in scores)
    return dict(pages=len(scores), recall=sum(s.found for s in scores) / max(1, sum(s.expected for s in scores)),
                foreign=sum(s.foreign for s in scores) / kept, duplicates=sum(s.duplicates for s in scores) / kept,
                p50=statistics.median(times) if times else 0.0, max=times[-1] if times else 0.0)


def main() -> None:
    """Print the per-page table and the overall line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, default=PAGES)
    args = parser.parse_args()
    scores = run(args.pages)
    print(f"{'page':10} {'expected':>8} {'found':>6} {'recall':>6} {'kept':>5} {'foreign':>7} {'dup':>4} {'parse s':>8}")
    for s in scores:
        print(f"{s.sha[:10]:10} {s.expected:8d} {s.found:6d} {s.found / max(1, s.expected):6.2f} {s.kept:5d} "
              f"{s.foreign:7d} {s.duplicates:4d} {s.seconds:8.3f}")
    t = totals(scores)
    print(f"\n{t['pages']} pages: recall {t['recall']:.3f}, foreign {t['foreign']:.1%} of kept, "
          f"duplicate keys {t['duplicates']:.1%} of kept, parse p50 {t['p50']:.3f} s, max {t['max']:.3f} s")


if __name__ == "__main__":
    main()
